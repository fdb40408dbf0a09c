/**
 * An option that may stand without its value (last, or followed by another flag) gets `value`, so
 * node's parseArgs, which needs one, reads `--flag` as `--flag=value`.
 */
export function bareOption(argv: string[], flag: string, value: string): string[] {
  return argv.map((arg, i) => (arg === flag && (i === argv.length - 1 || argv[i + 1].startsWith('-')) ? `${flag}=${value}` : arg));
}
