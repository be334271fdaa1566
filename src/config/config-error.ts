/**
 * Every problem found in a gateway.yaml, each as `file:line:col: key problem; remedy`. Exit code 78.
 * Each problem is one line: control characters (and line or bidi separators) in it, which can only
 * come from user text such as a key, a value or the file's name, are escaped, so no output line
 * goes without its position.
 */
export class ConfigErrors extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    const lines = problems.map(escapeControlCharacters);
    super(`${lines.length} problem(s) in the configuration:\n${lines.join("\n")}`);
    this.name = "ConfigErrors";
    this.problems = lines;
  }
}

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** "\n" as the two characters \n, other control characters as \uXXXX, as in JSON. */
function escapeControlCharacters(text: string): string {
  return text.replace(CONTROL_CHARACTERS, (c) => {
    const json = JSON.stringify(c).slice(1, -1);
    return json !== c ? json : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}
