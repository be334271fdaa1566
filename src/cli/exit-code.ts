/** Process exit codes (PRODUCT.md); 78 is EX_CONFIG from sysexits.h. */
export enum ExitCode {
  Ok = 0,
  Failed = 1,
  Usage = 2,
  Config = 78,
  /** `gateway status` only, as a Nagios plugin: something needs attention soon. */
  StatusWarning = 1,
  /** `gateway status` only, as a Nagios plugin: the site is broken or unsafe now. */
  StatusCritical = 2,
  /** `gateway status` only, as a Nagios plugin: it cannot tell (storage not readable by this user). */
  StatusUnknown = 3,
}
