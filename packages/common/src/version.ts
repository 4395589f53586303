/** The probemesh version, reported in heartbeats and `--version`. */
export const VERSION = '0.1.0';
