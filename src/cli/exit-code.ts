/** Process exit codes (PRODUCT.md); 78 is EX_CONFIG from sysexits.h. */
export enum ExitCode {
  Ok = 0,
  Failed = 1,
  Usage = 2,
  Config = 78,
}
