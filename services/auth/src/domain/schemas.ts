import { z } from 'zod';
import { BCRYPT_COST, MAX_PASSWORD_BYTES } from './passwords.js';

export const passwordSchema = z
  .string()
  .min(1)
  .refine((p) => Buffer.byteLength(p, 'utf8') <= MAX_PASSWORD_BYTES, { message: `at most ${MAX_PASSWORD_BYTES} UTF-8 bytes` });

export const emailSchema = z.email().max(254);

export const loginBodySchema = z.strictObject({
  email: emailSchema,
  password: passwordSchema,
});

export const userSchema = z.strictObject({
  id: z.number().int().positive(),
  firstName: z.string().min(1).max(100),
  lastName: z.string().min(1).max(100),
  email: emailSchema,
  password: passwordSchema,
});

export type UserInput = z.infer<typeof userSchema>;

/** A bcrypt hash as bcryptjs writes and reads it: `$2a$`, `$2b$` or `$2y$`, a two-digit cost, 22 characters of salt and 31 of hash. */
const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/**
 * A hash made elsewhere is held to the rule the service holds its own to: a cost BCRYPT_ROUNDS
 * accepts, so a seeded user is no cheaper to brute-force than one the service hashed. Messages never
 * contain the hash.
 */
export const passwordHashSchema = z.string().superRefine((hash, ctx) => {
  const cost = Number(BCRYPT_HASH.exec(hash)?.[1] ?? Number.NaN);
  if (Number.isNaN(cost)) {
    ctx.addIssue({ code: 'custom', message: 'not a bcrypt hash (expected $2a$, $2b$ or $2y$, a two-digit cost, then 53 characters of salt and hash)' });
  } else if (cost < BCRYPT_COST.min || cost > BCRYPT_COST.max) {
    ctx.addIssue({ code: 'custom', message: `bcrypt cost ${cost} is refused: it must be ${BCRYPT_COST.min}–${BCRYPT_COST.max}, like BCRYPT_ROUNDS` });
  }
});

type UserProfile = Omit<UserInput, 'password'>;

/** A user to seed: a plaintext `password` (hashed by the seed) or a bcrypt `passwordHash` (stored as it is). */
export type SeedUser = UserProfile & ({ password: string; passwordHash?: never } | { passwordHash: string; password?: never });

/** One entry of a seed file: the user schema with exactly one of `password` / `passwordHash`. */
export const seedUserSchema = userSchema
  .omit({ password: true })
  .extend({ password: passwordSchema.optional(), passwordHash: passwordHashSchema.optional() })
  .transform(({ password, passwordHash, ...user }, ctx): SeedUser => {
    if (password !== undefined && passwordHash === undefined) return { ...user, password };
    if (passwordHash !== undefined && password === undefined) return { ...user, passwordHash };
    ctx.addIssue({
      code: 'custom',
      message: `give exactly one of "password" (plaintext, hashed by the seed) or "passwordHash" (a bcrypt hash, stored as it is); this entry has ${password === undefined ? 'neither' : 'both'}`,
    });
    return z.NEVER;
  });
