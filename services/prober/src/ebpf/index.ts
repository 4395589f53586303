/** eBPF: the kernel's view of each probe's TCP connection (bpftrace, joined per probe). */
export { parseKernelLine, normalizeAddress, TcpState } from './events';
export type { KernelEvent, TcpConnEvent, TickEvent } from './events';
export { KernelJoiner } from './joiner';
export type { KernelJoinerOptions, JoinCounts } from './joiner';
export { kernelTcpOf, kernelNote, kernelTcpProto } from './kernel-tcp';
export type { KernelTcp, SocketInfo } from './kernel-tcp';
export { EbpfRunner, DEFAULT_PROGRAM, findExecutable } from './runner';
export type { EbpfRunnerOptions, EbpfStatus, EbpfCounts } from './runner';
export { registerEbpfMetrics } from './metrics';
