import { z } from 'zod';
import { MAX_PASSWORD_BYTES } from './passwords.js';

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
