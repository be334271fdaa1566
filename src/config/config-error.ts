/** Every problem found in a gateway.yaml, each as `file:line:col: key problem; remedy`. Exit code 78. */
export class ConfigErrors extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`${problems.length} problem(s) in the configuration:\n${problems.join("\n")}`);
    this.name = "ConfigErrors";
  }
}
