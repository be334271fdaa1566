import { readdirSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";

/** One nginx directive: `name args...;` or `name args... { block }`, with where it was written. */
export interface NginxDirective {
  readonly name: string;
  /** Arguments with quotes removed and escapes resolved; variables such as `$host` stay literal. */
  readonly args: readonly string[];
  /** The directives inside `{ }`, or null for a simple directive. */
  readonly block: readonly NginxDirective[] | null;
  /** "file:line" of the directive's name, for messages. */
  readonly where: string;
}

/** A syntax error or an unreadable include, at file:line; the message says what to fix. */
export class NginxSyntaxError extends Error {
  override readonly name = "NginxSyntaxError";
}

/** Where the text came from: `file` is used to resolve includes, `displayName` in messages. */
export interface NginxSource {
  readonly text: string;
  readonly file: string;
  readonly displayName: string;
}

/**
 * Parses an nginx config into directives, with `include` expanded in place. As nginx does,
 * relative include paths (globs allowed in the last part) resolve against the folder of the main
 * file, its configuration prefix. Included files are named in messages relative to that folder.
 */
export function parseNginx(source: NginxSource): NginxDirective[] {
  const prefix = dirname(resolve(source.file));
  const displayOf = (file: string): string => join(dirname(source.displayName), relative(prefix, file));
  const parseFile = (text: string, displayName: string, depth: number): NginxDirective[] => {
    const directives = parseTokens(tokenize(text, displayName), displayName);
    return expandIncludes(directives, depth);
  };
  const expandIncludes = (directives: readonly NginxDirective[], depth: number): NginxDirective[] =>
    directives.flatMap((d) => {
      if (d.name !== "include") return [{ ...d, block: d.block && expandIncludes(d.block, depth) }];
      if (d.args.length !== 1) throw new NginxSyntaxError(`${d.where}: include takes one file or glob (got ${d.args.length} arguments)`);
      if (depth > 20) throw new NginxSyntaxError(`${d.where}: includes nested more than 20 deep; does a file include itself?`);
      const pattern = resolve(prefix, d.args[0] as string);
      const files = expandGlob(pattern);
      if (files.length === 0 && !/[*?[]/.test(pattern)) throw new NginxSyntaxError(`${d.where}: include: file not found (${pattern}); give a path relative to ${prefix} or absolute`);
      return files.flatMap((file) => parseFile(readFileSync(file, "utf8"), displayOf(file), depth + 1));
    });
  return parseFile(source.text, source.displayName, 0);
}

/** Files matching `pattern`, sorted like nginx's glob(3); wildcards are allowed in the file name only. */
function expandGlob(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = pattern.slice(dir.length + 1);
  if (!/[*?[]/.test(base)) return isAbsolute(pattern) ? [pattern] : [];
  const regex = new RegExp(`^${base.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => regex.test(n) && !n.startsWith(".")).sort().map((n) => join(dir, n));
}

interface Token {
  readonly text: string;
  /** `{`, `}` and `;` outside quotes are punctuation; everything else is a word. */
  readonly punctuation: boolean;
  readonly line: number;
}

/** nginx's lexer: words, "double" and 'single' quoted strings with backslash escapes, # comments. */
function tokenize(text: string, displayName: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === "\n") line++;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "{" || c === "}" || c === ";") {
      tokens.push({ text: c, punctuation: true, line });
      i++;
    } else if (c === '"' || c === "'") {
      const start = line;
      let value = "";
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === "\n") line++;
        // nginx resolves \" \' \\ \t \r \n inside quotes; other backslashes stay as written.
        if (text[i] === "\\" && i + 1 < text.length) {
          const next = text[i + 1] as string;
          value += ({ '"': '"', "'": "'", "\\": "\\", t: "\t", r: "\r", n: "\n" } as Record<string, string>)[next] ?? `\\${next}`;
          i += 2;
        } else value += text[i++];
      }
      if (i >= text.length) throw new NginxSyntaxError(`${displayName}:${start}: unterminated ${c} quote; close the string`);
      tokens.push({ text: value, punctuation: false, line: start });
      i++;
    } else {
      let value = "";
      while (i < text.length && !/[\s;{}"'#]/.test(text[i] as string)) {
        if (text[i] === "\\" && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else value += text[i++];
      }
      tokens.push({ text: value, punctuation: false, line });
    }
  }
  return tokens;
}

function parseTokens(tokens: readonly Token[], displayName: string): NginxDirective[] {
  let pos = 0;
  const parseBlock = (closing: Token | null): NginxDirective[] => {
    const directives: NginxDirective[] = [];
    for (;;) {
      const token = tokens[pos];
      if (!token) {
        if (closing) throw new NginxSyntaxError(`${displayName}:${closing.line}: block opened here is never closed; add "}"`);
        return directives;
      }
      if (token.punctuation && token.text === "}") {
        if (!closing) throw new NginxSyntaxError(`${displayName}:${token.line}: unexpected "}"; remove it or open the block it closes`);
        pos++;
        return directives;
      }
      if (token.punctuation) throw new NginxSyntaxError(`${displayName}:${token.line}: unexpected "${token.text}"; a directive name must come first`);
      pos++;
      const args: string[] = [];
      for (;;) {
        const next = tokens[pos];
        if (!next) throw new NginxSyntaxError(`${displayName}:${token.line}: directive "${token.text}" has no ending ";"; add it`);
        pos++;
        if (!next.punctuation) args.push(next.text);
        else if (next.text === ";") {
          directives.push({ name: token.text, args, block: null, where: `${displayName}:${token.line}` });
          break;
        } else if (next.text === "{") {
          directives.push({ name: token.text, args, block: parseBlock(next), where: `${displayName}:${token.line}` });
          break;
        } else throw new NginxSyntaxError(`${displayName}:${next.line}: unexpected "}" inside directive "${token.text}"; end it with ";" first`);
      }
    }
  };
  return parseBlock(null);
}
