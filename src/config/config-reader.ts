import { isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import { parseDuration } from "./duration.js";

/** A value in the YAML tree with its dotted key path; `node` is undefined when the key is absent. */
export interface Field {
  readonly path: string;
  readonly node: Node | undefined;
  /** Where to point when the key is absent: the enclosing mapping. */
  readonly anchor: Node;
}

/** An integer field's bounds, as its schema node states them. */
export interface IntegerRange {
  readonly minimum: number;
  readonly maximum: number;
}

/** A duration field's bounds ("1s", "1d"), as its schema node states them. */
export interface DurationRange {
  readonly minimumDuration: string;
  readonly maximumDuration: string;
}

/**
 * Typed reads over yaml nodes that know each node's file:line:col. Reads never throw: a bad value
 * records a problem and returns undefined, so one pass reports every problem together.
 */
export class ConfigReader {
  readonly problems: string[] = [];

  constructor(
    private readonly displayName: string,
    private readonly lines: LineCounter,
  ) {}

  /** Records a problem at `node`: "gateway.yaml:12:5: <path> <message>". */
  fail(node: Node | undefined | null, path: string, message: string): void {
    this.problems.push(`${this.where(node)}: ${path} ${message}`);
  }

  where(node: Node | undefined | null): string {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    return `${this.displayName}:${line}:${col}`;
  }

  /**
   * Opens a mapping and checks its keys against `known`; an unknown key is a problem with a
   * did-you-mean. Returns a lookup of the known keys, or undefined when `field` is not a mapping.
   */
  map(field: Field, known: readonly string[]): ((key: string) => Field) | undefined {
    const { node, path } = field;
    if (node === undefined || isNull(node)) return (key) => ({ path: join(path, key), node: undefined, anchor: field.anchor });
    if (!isMap(node)) {
      this.fail(node, path || "the file", `must be a mapping of ${known.join(", ")} (got ${describe(node)})`);
      return undefined;
    }
    const values = new Map<string, Node | undefined>();
    for (const pair of node.items) {
      const keyNode = pair.key as Node;
      const key = isScalar(keyNode) ? String(keyNode.value) : "";
      if (!known.includes(key)) {
        const hint = suggest(key, known);
        this.fail(keyNode, join(path, /^[\w-]+$/.test(key) ? key : quote(key)), `is not a known key${hint ? `; did you mean "${hint}"?` : `; known keys here: ${known.join(", ")}`}`);
        continue;
      }
      if (values.has(key)) {
        this.fail(keyNode, join(path, key), "appears twice; keep one");
        continue;
      }
      const value = pair.value as Node | null;
      values.set(key, value === null || isNull(value) ? undefined : value);
    }
    return (key) => ({ path: join(path, key), node: values.get(key), anchor: node });
  }

  /** Items of a sequence, each as a Field with an indexed path (sites[0]). */
  list(field: Field): Field[] | undefined {
    const { node, path } = field;
    if (node === undefined) return undefined;
    if (!isSeq(node)) {
      this.fail(node, path, `must be a list (got ${describe(node)}); start each item on its own line with "- "`);
      return undefined;
    }
    return node.items.map((item, i) => ({ path: `${path}[${i}]`, node: item as Node, anchor: node }));
  }

  string(field: Field, remedy: string): string | undefined {
    const value = this.scalar(field);
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value.trim() === "") {
      this.fail(field.node, field.path, `must be a non-empty string (got ${describe(field.node)}); ${remedy}`);
      return undefined;
    }
    return value;
  }

  /** One of `values` (from the schema's enum); anything else is recorded with the choices. */
  choice<C extends string>(field: Field, values: readonly C[]): C | undefined {
    const value = this.scalar(field);
    if (value === undefined) return undefined;
    const found = values.find((v) => v === value);
    if (found === undefined) this.fail(field.node, field.path, `must be ${values.slice(0, -1).join(", ")} or ${values.at(-1)} (got ${describe(field.node)})`);
    return found;
  }

  /** A whole number within the bounds its schema node states; `remedy` says what to write. */
  integer(field: Field, range: IntegerRange, remedy: string): number | undefined {
    const value = this.scalar(field);
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < range.minimum || value > range.maximum) {
      this.fail(field.node, field.path, `must be a whole number from ${range.minimum} to ${range.maximum} (got ${describe(field.node)}); ${remedy}`);
      return undefined;
    }
    return value;
  }

  /** A duration ("90s", "15m", "2h", "1d") within the bounds its schema node states, in milliseconds. */
  duration(field: Field, range: DurationRange, remedy: string): number | undefined {
    const value = this.scalar(field);
    if (value === undefined) return undefined;
    const ms = typeof value === "string" ? parseDuration(value) : undefined;
    if (ms === undefined || ms < boundMs(range.minimumDuration) || ms > boundMs(range.maximumDuration)) {
      this.fail(field.node, field.path, `must be a duration from ${range.minimumDuration} to ${range.maximumDuration}: a whole number and s, m, h or d (got ${describe(field.node)}); ${remedy}`);
      return undefined;
    }
    return ms;
  }

  boolean(field: Field): boolean | undefined {
    const value = this.scalar(field);
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") {
      this.fail(field.node, field.path, `must be true or false (got ${describe(field.node)})`);
      return undefined;
    }
    return value;
  }

  /** The raw scalar value, or undefined when absent or not a scalar (which is recorded). */
  scalar(field: Field): unknown {
    const { node, path } = field;
    if (node === undefined) return undefined;
    if (!isScalar(node)) {
      this.fail(node, path, `must be a single value (got ${describe(node)})`);
      return undefined;
    }
    return node.value;
  }

  /** A field that must be present: records "is required" at the enclosing mapping when it is not. */
  require(field: Field, remedy: string): Field | undefined {
    if (field.node !== undefined) return field;
    this.fail(field.anchor, field.path, `is required; ${remedy}`);
    return undefined;
  }
}

/** A duration bound from the schema; one that does not parse is a bug in the schema. */
function boundMs(duration: string): number {
  const ms = parseDuration(duration);
  if (ms === undefined) throw new Error(`schema duration bound ${quote(duration)} is not a duration`);
  return ms;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function isNull(node: Node): boolean {
  return isScalar(node) && node.value === null;
}

/** User text in a message: in double quotes, with quotes, backslashes and control characters escaped as in JSON. */
export function quote(text: string): string {
  return JSON.stringify(text);
}

/** How a value reads in a message: a quoted string, a number, "a list", "a mapping". */
export function describe(node: Node | undefined): string {
  if (node === undefined) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) return typeof node.value === "string" ? quote(node.value) : String(node.value);
  return "an alias";
}

/** The known key closest to `word` by edit distance, if it is close enough to be a typo. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(word.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
