/**
 * A regular expression source (no anchors, no flags) matching exactly the decimal integers from
 * `minimum` to `maximum`, written without leading zeros: how the JSON Schema bounds a number that
 * gateway.yaml holds inside a string (a port in host:port, a duration's count, a prefix length).
 */
export function integerRangePattern(minimum: number, maximum: number): string {
  if (!Number.isSafeInteger(minimum) || !Number.isSafeInteger(maximum) || minimum < 0 || minimum > maximum) {
    throw new Error(`integerRangePattern(${minimum}, ${maximum}): need whole numbers 0 <= minimum <= maximum`);
  }
  const alternatives: string[] = [];
  // Split into runs of equal length (1-9, 10-99, ...), then each run digit by digit.
  for (let digits = String(minimum).length; digits <= String(maximum).length; digits++) {
    const low = Math.max(minimum, digits === 1 ? 0 : 10 ** (digits - 1));
    const high = Math.min(maximum, 10 ** digits - 1);
    alternatives.push(...sameLengthRange(String(low), String(high)));
  }
  return alternatives.length === 1 ? (alternatives[0] ?? "") : `(?:${alternatives.join("|")})`;
}

/** Alternatives matching the numbers from `low` to `high`, both written with the same number of digits. */
function sameLengthRange(low: string, high: string): string[] {
  if (low === high) return [low];
  const [lowFirst, highFirst] = [Number(low[0]), Number(high[0])];
  const [lowRest, highRest] = [low.slice(1), high.slice(1)];
  if (lowFirst === highFirst) return sameLengthRange(lowRest, highRest).map((rest) => `${lowFirst}${rest}`);
  const anyRest = lowRest.length <= 1 ? "\\d".repeat(lowRest.length) : `\\d{${lowRest.length}}`;
  const alternatives: string[] = [];
  // low's first digit with what may follow it, the full digits between, then high's first digit.
  let from = lowFirst;
  if (lowRest !== "0".repeat(lowRest.length)) {
    alternatives.push(...sameLengthRange(lowRest, "9".repeat(lowRest.length)).map((rest) => `${lowFirst}${rest}`));
    from++;
  }
  let to = highFirst;
  const last = highRest !== "9".repeat(highRest.length) ? sameLengthRange("0".repeat(highRest.length), highRest).map((rest) => `${highFirst}${rest}`) : [];
  if (last.length > 0) to--;
  if (from <= to) alternatives.push(`${from === to ? from : `[${from}-${to}]`}${anyRest}`);
  return [...alternatives, ...last];
}
