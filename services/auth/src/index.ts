// What other workspace packages may use of the auth service (the service itself is main.ts): the bcrypt
// costs it accepts, so the bench hashes its users exactly as the service would by default.
export { BCRYPT_COST } from './domain/passwords.js';
