import type { RedisClient } from '@ncc/service-kit';

export const USER_PREFIX = 'ncc:user:';
export const userKey = (id: number): string => `${USER_PREFIX}${id}`;
/** Vanilla Redis has no secondary index: this string maps a lower-cased email to the user id. */
export const emailKey = (email: string): string => `${USER_PREFIX}email:${email.toLowerCase()}`;

export interface UserRecord {
  id: number;
  firstName: string;
  lastName: string;
  email: string;
  /** bcrypt hash; undefined when the stored hash is missing (a corrupt record). */
  passwordHash: string | undefined;
}

export interface NewUser {
  id: number;
  firstName: string;
  lastName: string;
  email: string;
  passwordHash: string;
}

/** Two users with one email (case-insensitively): neither could log in reliably, so it is refused. */
export class DuplicateEmailError extends Error {
  constructor(
    readonly email: string,
    readonly ids: [number, number],
    /** true when ids[0] already holds the email in Redis (rather than both being in the input). */
    existing = false,
  ) {
    super(
      existing
        ? `Email ${email} already belongs to user ${ids[0]}; refusing user ${ids[1]} (emails are case-insensitive). Nothing was written.`
        : `Users ${ids[0]} and ${ids[1]} share the email ${email} (emails are case-insensitive); neither could log in. Fix the data and re-run.`,
    );
    this.name = 'DuplicateEmailError';
  }
}

/**
 * Users as hashes `ncc:user:<id>` plus the email index. Every command names one key, so this works
 * unchanged on Redis Cluster (no multi-key command across slots).
 */
export class UsersRepository {
  constructor(private readonly redis: RedisClient) {}

  async findById(id: number): Promise<UserRecord | null> {
    const hash = await this.redis.hgetall(userKey(id));
    if (!hash['email']) return null;
    return {
      id,
      firstName: hash['firstName'] ?? '',
      lastName: hash['lastName'] ?? '',
      email: hash['email'],
      passwordHash: hash['password'] || undefined,
    };
  }

  async exists(id: number): Promise<boolean> {
    return (await this.redis.exists(userKey(id))) === 1;
  }

  async idForEmail(email: string): Promise<number | null> {
    const id = await this.redis.get(emailKey(email));
    return id === null ? null : Number(id);
  }

  /** Claim the email (refusing one held by another id), then write the hash. */
  async save(user: NewUser): Promise<void> {
    const key = emailKey(user.email);
    const claimed = await this.redis.set(key, String(user.id), 'NX');
    if (claimed === null) {
      const holder = Number(await this.redis.get(key));
      if (holder !== user.id) throw new DuplicateEmailError(user.email.toLowerCase(), [holder, user.id], true);
    }
    const previousEmail = await this.redis.hget(userKey(user.id), 'email');
    await this.redis.hset(userKey(user.id), {
      id: String(user.id),
      firstName: user.firstName,
      lastName: user.lastName,
      email: user.email,
      password: user.passwordHash,
    });
    // A changed email (seed --force) releases the old index entry: otherwise the old address would
    // still log this user in, and could never be given to anyone else.
    if (previousEmail && previousEmail.toLowerCase() !== user.email.toLowerCase()) {
      const oldKey = emailKey(previousEmail);
      if ((await this.redis.get(oldKey)) === String(user.id)) await this.redis.del(oldKey);
    }
  }

  async nextId(): Promise<number> {
    // Ids from the demo file stay below 1000; added users start there.
    for (;;) {
      const id = await this.redis.incr(`${USER_PREFIX}next-id`);
      const candidate = id < 1000 ? await this.redis.set(`${USER_PREFIX}next-id`, '1000').then(() => 1000) : id;
      if (!(await this.exists(candidate))) return candidate;
    }
  }
}
