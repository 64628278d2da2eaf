/** Numbers as the bench prints them: thousands separators, a fixed number of decimals. */
export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Progress lines go to stderr; the report alone goes to stdout. */
export const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
