import { integerRangePattern } from "./range-pattern.js";

/** Units of a gateway.yaml duration, largest first. */
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;
type Unit = keyof typeof UNIT_MS;

/** "90s", "15m", "2h", "1d" (a whole number, optional spaces, a unit). Leading zeros are allowed. */
const DURATION = /^(\d+)\s*([smhd])$/;

/** A duration's milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  return match ? Number(match[1]) * UNIT_MS[match[2] as Unit] : undefined;
}

/** Milliseconds (a whole number of seconds) as a duration in its largest exact unit: 900000 → "15m". */
export function formatDuration(ms: number): string {
  const unit = (Object.keys(UNIT_MS) as Unit[]).find((u) => ms % UNIT_MS[u] === 0) ?? "s";
  return `${ms / UNIT_MS[unit]}${unit}`;
}

/**
 * A JSON Schema pattern for the durations from `minimumMs` to `maximumMs`, in any unit: the same
 * strings `parseDuration` reads and the range admits (1m to 1d: "60s" and "1d" pass, "59s" and
 * "25h" do not).
 */
export function durationPattern(minimumMs: number, maximumMs: number): string {
  const alternatives = (Object.keys(UNIT_MS) as Unit[]).flatMap((unit) => {
    const [low, high] = [Math.ceil(minimumMs / UNIT_MS[unit]), Math.floor(maximumMs / UNIT_MS[unit])];
    return low <= high ? [`0*${integerRangePattern(low, high)}\\s*${unit}`] : [];
  });
  return `^(?:${alternatives.join("|")})$`;
}
