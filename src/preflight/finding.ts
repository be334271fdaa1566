/**
 * One line of `gateway check` (and of `gateway init`'s checks). A problem makes check exit 1:
 * serve would fail or misbehave with it. A warning is printed and check still exits 0: it may be
 * fine (a tunnel not up yet, a server behind NAT) and the text says when it is not.
 */
export interface Finding {
  readonly level: "ok" | "warning" | "problem";
  readonly text: string;
}

/** "gateway.yaml:4:10: " for a setting written in the file; the file's path for a default. */
export function at(position: string | null, file: string): string {
  return `${position ?? file}: `;
}
