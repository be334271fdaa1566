import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/** One nginx directive: `name args...;` or `name args... { block }`, with where it was written. */
export interface NginxDirective {
  readonly name: string;
  /** Arguments with quotes removed and escapes resolved; variables such as `$host` stay literal. */
  readonly args: readonly string[];
  /** The directives inside `{ }`, or null for a simple directive. */
  readonly block: readonly NginxDirective[] | null;
  /** "file:line:col" of the directive's name, for messages (col counts characters from 1). */
  readonly where: string;
}

/** A syntax error or an unreadable include, at file:line:col; the message says what to fix. */
export class NginxSyntaxError extends Error {
  override readonly name = "NginxSyntaxError";
}

/** Where the text came from: `file` locates it, `displayName` names it in messages. */
export interface NginxSource {
  readonly text: string;
  readonly file: string;
  readonly displayName: string;
  /**
   * The folder of the nginx.conf that includes `file` (nginx's conf prefix; /etc/nginx on Debian,
   * Ubuntu and most packages). Not used when `file` is itself a whole nginx.conf: see confPrefix.
   */
  readonly prefix: string;
}

/** A parsed nginx config: its directives with includes expanded, and where relative paths point. */
export interface NginxConfig {
  readonly directives: readonly NginxDirective[];
  /**
   * The folder nginx resolves relative include and ssl_certificate paths against: the folder of
   * nginx.conf (nginx's conf prefix), never the including file's. That is the main file's own
   * folder when it is a whole nginx.conf (it has an events or http block, as `nginx -c` reads it),
   * otherwise the source's `prefix`.
   */
  readonly confPrefix: string;
}

/**
 * Parses an nginx config into directives, with `include` expanded in place (globs allowed in the
 * last part of the path). Included files are named in messages relative to the main file's
 * folder when they are under it, by absolute path otherwise.
 */
export function parseNginx(source: NginxSource): NginxConfig {
  const mainFolder = dirname(resolve(source.file));
  const top = parseTokens(tokenize(source.text, source.displayName));
  const isWholeNginxConf = top.some((d) => (d.name === "events" || d.name === "http") && d.block);
  const confPrefix = isWholeNginxConf ? mainFolder : resolve(source.prefix);
  const displayOf = (file: string): string => {
    const path = relative(mainFolder, file);
    return path.split(sep)[0] === ".." ? file : join(dirname(source.displayName), path);
  };
  const notFoundRemedy = isWholeNginxConf
    ? `nginx resolves relative paths against the folder of nginx.conf, here ${confPrefix}; fix the path`
    : `nginx resolves relative paths against the folder of nginx.conf, here ${confPrefix} (--prefix); if your nginx.conf is elsewhere, pass --prefix DIR, or fix the path`;
  const expandIncludes = (directives: readonly NginxDirective[], depth: number): NginxDirective[] =>
    directives.flatMap((d) => {
      if (d.name !== "include") return [{ ...d, block: d.block && expandIncludes(d.block, depth) }];
      if (d.args.length !== 1) throw new NginxSyntaxError(`${d.where}: include takes one file or glob (got ${d.args.length} arguments)`);
      if (depth > 20) throw new NginxSyntaxError(`${d.where}: includes nested more than 20 deep; does a file include itself?`);
      return expandGlob(resolve(confPrefix, d.args[0] as string)).flatMap((file) => {
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new NginxSyntaxError(`${d.where}: include ${d.args[0]}: ${code === "ENOENT" ? "file not found" : `cannot read it (${code ?? "unreadable"})`} (looked for ${file}); ${notFoundRemedy}`);
        }
        return expandIncludes(parseTokens(tokenize(text, displayOf(file))), depth + 1);
      });
    });
  return { directives: expandIncludes(top, 0), confPrefix };
}

/** Files matching `pattern` (an absolute path), sorted like nginx's glob(3); wildcards are allowed in the file name only. */
function expandGlob(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = pattern.slice(dir.length + 1);
  if (!/[*?[]/.test(base)) return [pattern];
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
  /** `{`, `}` and `;` at the start of a token are punctuation; everything else is a word. */
  readonly punctuation: boolean;
  /** "file:line:col" where the token starts (col counts characters from 1). */
  readonly where: string;
}

/** Characters that end an unquoted word, as in nginx's ngx_conf_read_token (not `}` or `#`). */
const WORD_END = new Set([" ", "\t", "\r", "\n", ";", "{"]);
/** After a closing quote nginx wants a separator; `)` closes an `if (...)` condition. */
const AFTER_QUOTE = new Set([" ", "\t", "\r", "\n", ";", "{", ")"]);
/** Escapes nginx resolves in every word, quoted or not; any other backslash stays as written. */
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', "'": "'", "\\": "\\", t: "\t", r: "\r", n: "\n" };

/**
 * nginx's lexer (src/core/ngx_conf_file.c): `#` starts a comment only where a token could start;
 * an unquoted word ends at whitespace, `;` or `{` (`${var}` is part of it); "double" and 'single'
 * quoted strings must be followed by a separator; a backslash escapes the next character.
 */
function tokenize(text: string, displayName: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let lineStart = 0;
  let i = 0;
  /** Moves to `to`, counting the newlines passed (a quoted string or an escape may hold some). */
  const advance = (to: number): void => {
    for (; i < to; i++) {
      if (text[i] === "\n") {
        line++;
        lineStart = i + 1;
      }
    }
  };
  /** The end of a word or quoted string starting at `from`: the index of `stop`'s first hit. */
  const scan = (from: number, stop: (c: string, at: number) => boolean): number => {
    let j = from;
    while (j < text.length && !stop(text[j] as string, j)) j += text[j] === "\\" ? 2 : text[j] === "$" && text[j + 1] === "{" ? 2 : 1;
    return Math.min(j, text.length);
  };
  while (i < text.length) {
    const c = text[i] as string;
    const where = `${displayName}:${line}:${i - lineStart + 1}`;
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      advance(i + 1);
    } else if (c === "#") {
      const newline = text.indexOf("\n", i);
      advance(newline === -1 ? text.length : newline);
    } else if (c === ";" || c === "{" || c === "}") {
      tokens.push({ text: c, punctuation: true, where });
      advance(i + 1);
    } else if (c === '"' || c === "'") {
      const close = scan(i + 1, (ch) => ch === c);
      if (close >= text.length) throw new NginxSyntaxError(`${where}: unterminated ${c} quote; close the string`);
      tokens.push({ text: unescape(text.slice(i + 1, close)), punctuation: false, where });
      advance(close + 1);
      const next = text[i];
      if (next !== undefined && !AFTER_QUOTE.has(next)) throw new NginxSyntaxError(`${displayName}:${line}:${i - lineStart + 1}: unexpected "${next}" right after a quoted string; put a space before it`);
    } else {
      const end = scan(i, (ch) => WORD_END.has(ch));
      tokens.push({ text: unescape(text.slice(i, end)), punctuation: false, where });
      advance(end);
    }
  }
  return tokens;
}

function unescape(raw: string): string {
  return raw.replace(/\\(.)/gs, (whole, next: string) => ESCAPES[next] ?? whole);
}

function parseTokens(tokens: readonly Token[]): NginxDirective[] {
  let pos = 0;
  const parseBlock = (closing: Token | null): NginxDirective[] => {
    const directives: NginxDirective[] = [];
    for (;;) {
      const token = tokens[pos];
      if (!token) {
        if (closing) throw new NginxSyntaxError(`${closing.where}: block opened here is never closed; add "}"`);
        return directives;
      }
      if (token.punctuation && token.text === "}") {
        if (!closing) throw new NginxSyntaxError(`${token.where}: unexpected "}"; remove it or open the block it closes`);
        pos++;
        return directives;
      }
      if (token.punctuation) throw new NginxSyntaxError(`${token.where}: unexpected "${token.text}"; a directive name must come first`);
      pos++;
      const args: string[] = [];
      for (;;) {
        const next = tokens[pos];
        if (!next) throw new NginxSyntaxError(`${token.where}: directive "${token.text}" has no ending ";"; add it`);
        pos++;
        if (!next.punctuation) args.push(next.text);
        else if (next.text === ";") {
          directives.push({ name: token.text, args, block: null, where: token.where });
          break;
        } else if (next.text === "{") {
          directives.push({ name: token.text, args, block: parseBlock(next), where: token.where });
          break;
        } else throw new NginxSyntaxError(`${next.where}: unexpected "}" inside directive "${token.text}"; end it with ";" first`);
      }
    }
  };
  return parseBlock(null);
}
