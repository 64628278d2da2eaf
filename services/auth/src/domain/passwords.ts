import bcrypt from 'bcryptjs';

/** bcrypt ignores bytes past 72; longer passwords are refused at validation instead of truncated. */
export const MAX_PASSWORD_BYTES = 72;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** Spend the same time as a real verify, for logins whose user does not exist. */
  verifyDummy(password: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * bcryptjs through its async API, so the event loop keeps serving while a hash runs.
 * The dummy hash is made once at the configured cost: an unknown email costs one full compare,
 * exactly like a wrong password, and response times do not reveal which emails exist.
 */
export class BcryptHasher implements PasswordHasher {
  private dummy: Promise<string> | undefined;

  constructor(private readonly rounds: number) {}

  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.rounds);
  }

  async verify(password: string, hash: string): Promise<boolean> {
    try {
      return await bcrypt.compare(password, hash);
    } catch {
      // A malformed stored hash is a wrong password, not a 500.
      return false;
    }
  }

  async verifyDummy(password: string): Promise<void> {
    this.dummy ??= bcrypt.hash('ncc-dummy-password-for-timing', this.rounds);
    await bcrypt.compare(password, await this.dummy);
  }

  /** Make the dummy hash before the first login so the first unknown-email login is not faster. */
  async warmUp(): Promise<void> {
    this.dummy ??= bcrypt.hash('ncc-dummy-password-for-timing', this.rounds);
    await this.dummy;
  }

  async close(): Promise<void> {}
}
