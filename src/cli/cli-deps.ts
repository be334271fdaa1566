/** What commands may touch of the outside world; main.ts provides the real ones. */
export interface CliDeps {
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Subscribes to a process signal; returns the unsubscribe function. */
  readonly onSignal: (signal: "SIGHUP" | "SIGTERM" | "SIGINT", handler: () => void) => () => void;
}
