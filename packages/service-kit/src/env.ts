import { z } from 'zod';

/** Raised when the environment does not satisfy a service's schema; names every bad key. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly { key: string; message: string }[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i.key}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']).transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');

/** Field schemas for environment variables (strings in, typed values out). */
export const env = {
  bool,
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(fallback),
  /** Comma separated list; blanks dropped. */
  list: () =>
    z.string().transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    ),
};

/**
 * A rule between keys that no single field's schema can express. It is checked even when some field
 * is invalid (`when`), so every problem in the environment is reported in one go; `broken` must
 * therefore cope with a field that failed its own schema (it then holds the raw string, or NaN).
 */
export interface CrossKeyRule<T> {
  key: string;
  /** Fixed, or made from the values when the rule is broken (never from a secret's value). */
  message: string | ((config: T) => string);
  broken: (config: T) => boolean;
}

/** Adds cross-key rules to an object schema as refinements; the result can still be `.safeExtend()`ed. */
export function withRules<S extends z.ZodObject>(schema: S, rules: readonly CrossKeyRule<z.output<S>>[]): S {
  return rules.reduce<S>(
    (refined, rule) =>
      refined.refine((config) => !rule.broken(config), {
        path: [rule.key],
        error: (issue) => (typeof rule.message === 'string' ? rule.message : rule.message(issue.input as z.output<S>)),
        when: () => true,
      }),
    schema,
  );
}
