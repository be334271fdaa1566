import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { durationPattern, formatDuration, parseDuration } from "./duration.js";
import { integerRangePattern } from "./range-pattern.js";

describe("integerRangePattern", () => {
  const ranges: Array<[number, number]> = [[0, 0], [0, 9], [1, 1], [1, 9], [0, 32], [0, 128], [1, 1000], [5, 3600], [1, 65535], [0, 65535], [7, 7], [10, 10], [19, 91], [100, 199], [101, 999], [1, 86_400], [999, 1001], [12_345, 54_321]];
  for (const [minimum, maximum] of ranges) {
    it(`matches exactly ${minimum} to ${maximum}, without leading zeros`, () => {
      const pattern = new RegExp(`^${integerRangePattern(minimum, maximum)}$`);
      for (let n = 0; n <= Math.min(maximum * 2 + 10, 140_000); n++) assert.equal(pattern.test(String(n)), n >= minimum && n <= maximum, String(n));
      assert.equal(pattern.test(`0${minimum}`), false);
      assert.equal(pattern.test(""), false);
    });
  }

  it("refuses a range it cannot express", () => {
    assert.throws(() => integerRangePattern(2, 1));
    assert.throws(() => integerRangePattern(-1, 1));
    assert.throws(() => integerRangePattern(0.5, 1));
  });
});

describe("durations", () => {
  it("parses a whole number and a unit", () => {
    const cases: Array<[string, number | undefined]> = [["20s", 20_000], ["15m", 900_000], ["2h", 7_200_000], ["1d", 86_400_000], ["15 m", 900_000], ["015m", 900_000], ["0s", 0], ["1.5h", undefined], ["15", undefined], ["m", undefined], ["15min", undefined], [" 15m", undefined], ["-1s", undefined], ["1e3s", undefined]];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  it("formats in the largest exact unit", () => {
    assert.deepEqual([1000, 90_000, 900_000, 7_200_000, 86_400_000, 90_000_000].map(formatDuration), ["1s", "90s", "15m", "2h", "1d", "25h"]);
  });

  it("durationPattern admits exactly what parseDuration reads inside the range, in every unit", () => {
    const ranges: Array<[number, number]> = [[1000, 86_400_000], [60_000, 86_400_000], [5000, 3_600_000], [1000, 120_000], [90_000, 90_000]];
    const texts = ["0s", "1 s", "01s", "15m", "1.5h", "1e3s", "1d", "2d", "x"];
    for (const [minimumMs, maximumMs] of ranges) {
      const pattern = new RegExp(durationPattern(minimumMs, maximumMs));
      const candidates = [...texts];
      for (const [unit, ms] of [["s", 1000], ["m", 60_000], ["h", 3_600_000], ["d", 86_400_000]] as const) {
        for (const n of [0, 1, 2, 4, 5, 23, 24, 25, 59, 60, 61, 89, 90, 91, 119, 120, 121, 1439, 1440, 1441, 3599, 3600, 3601, 86_399, 86_400, 86_401]) candidates.push(`${n}${unit}`);
        candidates.push(`${Math.ceil(minimumMs / ms)}${unit}`, `${Math.floor(maximumMs / ms)}${unit}`);
      }
      for (const text of candidates) {
        const ms = parseDuration(text);
        assert.equal(pattern.test(text), ms !== undefined && ms >= minimumMs && ms <= maximumMs, `${text} in ${formatDuration(minimumMs)}..${formatDuration(maximumMs)}`);
      }
    }
  });
});
