package main

// main does nothing: as a reactor the module is driven through its exports
// (see exports.go), and on other targets it has no use.
func main() {}
