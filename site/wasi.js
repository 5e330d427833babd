// wasi.js: the few WASI preview1 functions that wisp's engine module (a Go
// wasip1 reactor) calls, for browsers and Node alike.
//
// The engine calls only clock_time_get, random_get, args_sizes_get,
// environ_sizes_get and fd_write (the Go runtime's fatal errors on stderr).
// Everything else the module imports answers ENOSYS or EBADF: there is no
// file system, no arguments and no environment.

const ESUCCESS = 0;
const EBADF = 8;
const EINVAL = 28;
const ENOSYS = 52;

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_PROCESS_CPUTIME = 2;
const CLOCK_THREAD_CPUTIME = 3;

const FILETYPE_CHARACTER_DEVICE = 2;
const EVENTTYPE_CLOCK = 0;

/** ExitError is thrown through the engine when it calls proc_exit. */
export class ExitError extends Error {
  constructor(code) {
    super(`wisp: the engine module exited with code ${code}`);
    this.name = 'ExitError';
    this.code = code;
  }
}

/**
 * createWASI returns the import object of module "wasi_snapshot_preview1"
 * for a module, and a function to give it the module's memory once the
 * module is instantiated, before any of its functions runs.
 *
 * options.stdout and options.stderr receive what the module writes to file
 * descriptors 1 and 2, as strings; by default it is dropped.
 * options.imports lists the names the module imports (from
 * WebAssembly.Module.imports), so that each gets a function: those this
 * shim does not implement answer ENOSYS.
 *
 * @param {{stdout?: (s: string) => void, stderr?: (s: string) => void,
 *          imports?: string[]}} [options]
 * @returns {{imports: Record<string, Function>,
 *            setMemory: (m: WebAssembly.Memory) => void}}
 */
export function createWASI(options = {}) {
  let memory = null;
  const decoders = [null, new TextDecoder(), new TextDecoder()];
  const sinks = [null, options.stdout, options.stderr];
  const dv = () => new DataView(memory.buffer); // a new view every call: memory grows
  const u8 = (ptr, len) => new Uint8Array(memory.buffer, ptr >>> 0, len >>> 0);
  const origin = performance.timeOrigin ?? Date.now() - performance.now();

  const fns = {
    args_sizes_get(argc, bufSize) {
      dv().setUint32(argc >>> 0, 0, true);
      dv().setUint32(bufSize >>> 0, 0, true);
      return ESUCCESS;
    },
    args_get() { return ESUCCESS; },
    environ_sizes_get(count, bufSize) {
      dv().setUint32(count >>> 0, 0, true);
      dv().setUint32(bufSize >>> 0, 0, true);
      return ESUCCESS;
    },
    environ_get() { return ESUCCESS; },
    clock_res_get(id, res) {
      dv().setBigUint64(res >>> 0, 1000n, true);
      return ESUCCESS;
    },
    clock_time_get(id, precision, time) {
      let ns;
      switch (id) {
        case CLOCK_REALTIME:
          ns = BigInt(Math.round((origin + performance.now()) * 1e3)) * 1000n;
          break;
        case CLOCK_MONOTONIC:
        case CLOCK_PROCESS_CPUTIME:
        case CLOCK_THREAD_CPUTIME:
          ns = BigInt(Math.round(performance.now() * 1e6));
          break;
        default:
          return EINVAL;
      }
      dv().setBigUint64(time >>> 0, ns, true);
      return ESUCCESS;
    },
    random_get(ptr, len) {
      // getRandomValues fills at most 65536 bytes at a time.
      for (let off = 0; off < len >>> 0; off += 65536) {
        // Not into a shared memory (the threaded build's), which
        // browsers refuse: through a copy.
        const dst = u8((ptr >>> 0) + off, Math.min(65536, (len >>> 0) - off));
        if (dst.buffer instanceof ArrayBuffer) crypto.getRandomValues(dst);
        else dst.set(crypto.getRandomValues(new Uint8Array(dst.length)));
      }
      return ESUCCESS;
    },
    fd_write(fd, iovs, iovsLen, nwritten) {
      if (fd !== 1 && fd !== 2) return EBADF;
      const view = dv();
      let n = 0;
      let text = '';
      for (let i = 0; i < iovsLen >>> 0; i++) {
        const ptr = view.getUint32((iovs >>> 0) + 8 * i, true);
        const len = view.getUint32((iovs >>> 0) + 8 * i + 4, true);
        text += decoders[fd].decode(u8(ptr, len).slice(), { stream: true }); // a copy: browsers decode no shared memory
        n += len;
      }
      view.setUint32(nwritten >>> 0, n, true);
      if (sinks[fd] && text) sinks[fd](text);
      return ESUCCESS;
    },
    fd_fdstat_get(fd, stat) {
      if (fd > 2) return EBADF;
      const view = dv();
      u8(stat, 24).fill(0);
      view.setUint8(stat >>> 0, FILETYPE_CHARACTER_DEVICE);
      return ESUCCESS;
    },
    fd_prestat_get() { return EBADF; }, // no preopened directories
    fd_prestat_dir_name() { return EBADF; },
    fd_close() { return EBADF; },
    fd_read() { return EBADF; },
    fd_fdstat_set_flags() { return ENOSYS; },
    sched_yield() { return ESUCCESS; },
    // poll_oneoff reports every clock subscription as fired at once: the Go
    // runtime sleeps only when no goroutine can run, which a reactor whose
    // exports never block does not do; it tolerates early wake-ups.
    poll_oneoff(inPtr, outPtr, nsubs, neventsPtr) {
      const view = dv();
      let n = 0;
      for (let i = 0; i < nsubs >>> 0; i++) {
        const sub = (inPtr >>> 0) + 48 * i;
        const ev = (outPtr >>> 0) + 32 * n;
        const tag = view.getUint8(sub + 8);
        u8(ev, 32).fill(0);
        view.setBigUint64(ev, view.getBigUint64(sub, true), true);
        view.setUint16(ev + 8, tag === EVENTTYPE_CLOCK ? ESUCCESS : ENOSYS, true);
        view.setUint8(ev + 10, tag);
        n++;
      }
      view.setUint32(neventsPtr >>> 0, n, true);
      return ESUCCESS;
    },
    proc_exit(code) { throw new ExitError(code); },
  };

  const imports = {};
  for (const name of new Set([...Object.keys(fns), ...(options.imports ?? [])])) {
    imports[name] = fns[name] ?? (() => ENOSYS);
  }
  return { imports, setMemory(m) { memory = m; } };
}
