import type { z } from 'zod';
import { httpErrors } from './errors.js';

/** Parse a request body with a zod schema; a failure is a 400 naming each offending field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const fields = new Set<string>();
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') for (const key of issue.keys) fields.add(String(key));
    else fields.add(issue.path.length > 0 ? issue.path.map(String).join('.') : 'body');
  }
  return failValidation([...fields]);
}

function failValidation(fields: string[]): never {
  throw httpErrors.validation(fields);
}
