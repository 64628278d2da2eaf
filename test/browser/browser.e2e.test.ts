/**
 * The browser path (issue 17), as a person walks it, in Debian's Chromium driven by playwright-core:
 * through each gateway — the one `pnpm start` starts (the Node gateway) and the nginx one of
 * `docker compose up` (the real nginx binary running deploy/nginx/gateway.conf) — on one origin.
 * Sign-in errors, signing in, the visit counter across reloads and an auth restart, checking in,
 * live checkins from another user, sessions and "Log out everywhere" across two browsers, Redis
 * going away and coming back, and the cookie as Chromium stores it. Screenshots of the main states
 * go to test/artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { until } from '@ncc/testing';
import { collectProblems, hasChromium, launchBrowser, screenshot } from '../support/browser.js';
import { type BrowserGateway, hasNginx, startNginxStack, startPnpmStart } from '../support/gateways.js';
import { DEMO } from '../support/services.js';

const OTHER = { id: 78, email: 'bea.browser@example.com', password: 'bea-password-1', firstName: 'Bea', lastName: 'Browser' };

/** Chromium logs every 4xx/5xx answer to a fetch ("Failed to load resource"); those are expected here. */
const unexpected = (problems: string[]): string[] => problems.filter((p) => !p.includes('Failed to load resource'));

async function signIn(page: Page, user: { email: string; password: string }): Promise<void> {
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect.poll(() => page.locator('#whoami').textContent(), { timeout: 10_000 }).toBe(`Signed in as ${user.email}`);
}

async function checkIn(page: Page, locationId: number, stars: number): Promise<string> {
  await page.getByLabel('Location').fill(String(locationId));
  await page.getByLabel('Stars').fill(String(stars));
  await page.getByRole('button', { name: 'Check in' }).click();
  const status = page.getByRole('status');
  await expect.poll(async () => (await status.textContent()) ?? '', { timeout: 10_000 }).not.toMatch(/^$|Checking in/);
  return (await status.textContent()) ?? '';
}

const visits = async (page: Page): Promise<number> => {
  await expect.poll(() => page.locator('#visits').textContent(), { timeout: 10_000 }).toMatch(/^Visits: \d+$/);
  return Number(((await page.locator('#visits').textContent()) ?? '').replace('Visits: ', ''));
};

const liveReady = (page: Page): Promise<void> => expect.poll(() => page.locator('#live-state').textContent(), { timeout: 10_000 }).toBe('Live');

function describeWalk(name: string, start: () => Promise<BrowserGateway>, tag: string, runnable: boolean): void {
  describe.skipIf(!hasChromium || !runnable)(`in Chromium through ${name}`, () => {
    let gateway: BrowserGateway;
    let browser: Browser;
    const contexts: BrowserContext[] = [];
    const newPage = async (): Promise<{ page: Page; context: BrowserContext; problems: string[] }> => {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      contexts.push(context);
      const page = await context.newPage();
      return { page, context, problems: collectProblems(page) };
    };

    beforeAll(async () => {
      [gateway, browser] = await Promise.all([start(), launchBrowser()]);
    }, 120_000);

    afterAll(async () => {
      await Promise.all(contexts.map((c) => c.close()));
      await browser?.close();
      await gateway?.close();
    });

    it('when a person signs in, reloads, checks in and logs out, then the page shows each state and the cookie is HttpOnly and SameSite=Lax', async () => {
      const { page, context, problems } = await newPage();
      await page.goto(gateway.url);
      await expect.poll(() => page.getByLabel('Email').isVisible()).toBe(true);
      await screenshot(page, `${tag}-signed-out`);

      await page.getByLabel('Email').fill(DEMO.email);
      await page.getByLabel('Password').fill('not-the-password');
      await page.getByRole('button', { name: 'Log in' }).click();
      await expect.poll(() => page.getByRole('alert').filter({ hasText: 'Invalid login' }).isVisible()).toBe(true);
      await screenshot(page, `${tag}-wrong-password`);

      await page.getByLabel('Password').fill(DEMO.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${DEMO.email}`);
      const first = await visits(page);
      await page.reload();
      await expect.poll(() => visits(page)).toBe(first + 1);

      const [cookie] = (await context.cookies()).filter((c) => c.name === 'checkinapp');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false, path: '/' });

      await liveReady(page);
      const accepted = await checkIn(page, 9001, 4);
      expect(accepted).toMatch(/^Accepted \d+-\d+$/);
      const entryId = accepted.replace('Accepted ', '');
      // Its own checkin arrives over the live stream too.
      await expect.poll(() => page.locator(`#checkins-list li[data-id="${entryId}"]`).count(), { timeout: 2000 }).toBe(1);
      expect(await checkIn(page, 9001, 4)).toBe('Duplicate');
      expect(await checkIn(page, 9002, 9)).toMatch(/starRating/);
      await expect.poll(() => page.getByRole('listitem').filter({ hasText: 'this browser' }).count()).toBe(1);
      await screenshot(page, `${tag}-signed-in`);

      await page.getByRole('button', { name: 'Log out', exact: true }).click();
      await expect.poll(() => page.getByLabel('Email').isVisible()).toBe(true);
      expect((await context.cookies()).filter((c) => c.name === 'checkinapp')).toEqual([]);
      expect(unexpected(problems)).toEqual([]);
    });

    it('when two people are signed in in two browsers, then each sees the other’s checkin appear within 2 s without a reload', async () => {
      const ann = await newPage();
      const bea = await newPage();
      await Promise.all([ann.page.goto(gateway.url), bea.page.goto(gateway.url)]);
      await signIn(ann.page, DEMO);
      await signIn(bea.page, OTHER);
      await Promise.all([liveReady(ann.page), liveReady(bea.page)]);
      const fromAnn = (await checkIn(ann.page, 9101, 5)).replace('Accepted ', '');
      await expect.poll(() => bea.page.locator(`#checkins-list li[data-id="${fromAnn}"][data-user-id="${DEMO.id}"]`).count(), { timeout: 2000 }).toBe(1);
      const fromBea = (await checkIn(bea.page, 9102, 3)).replace('Accepted ', '');
      await expect.poll(() => ann.page.locator(`#checkins-list li[data-id="${fromBea}"][data-user-id="${OTHER.id}"]`).count(), { timeout: 2000 }).toBe(1);
      await screenshot(bea.page, `${tag}-live-from-another-user`);
    });

    it('when the same person clicks "Log out everywhere" in one browser, then the other browser drops to the sign-in form by itself', async () => {
      const one = await newPage();
      const two = await newPage();
      await one.page.goto(gateway.url);
      await signIn(one.page, OTHER);
      await two.page.goto(gateway.url);
      await signIn(two.page, OTHER);
      await liveReady(two.page);
      await expect.poll(() => one.page.getByRole('button', { name: 'Revoke' }).count()).toBeGreaterThanOrEqual(2);
      await one.page.getByRole('button', { name: 'Log out everywhere' }).click();
      await expect.poll(() => one.page.getByLabel('Email').isVisible()).toBe(true);
      // No reload, no click: the live stream's session check ends it (LIVE_HEARTBEAT_MS) and the page signs out.
      await expect.poll(() => two.page.getByLabel('Email').isVisible(), { timeout: 10_000 }).toBe(true);
      await two.page.reload();
      await expect.poll(() => two.page.getByLabel('Email').isVisible()).toBe(true);
    });

    it('when auth restarts, then a reload keeps counting the visits where they were', async () => {
      const { page } = await newPage();
      await page.goto(gateway.url);
      await signIn(page, DEMO);
      const before = await visits(page);
      await gateway.restartAuth();
      await page.reload();
      await expect.poll(() => visits(page), { timeout: 15_000 }).toBe(before + 1);
      await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${DEMO.email}`);
    });

    it('when Redis goes away, then the page shows "Service unavailable", and once Redis is back it recovers by itself and shows new checkins again', async () => {
      const { page } = await newPage();
      await page.goto(gateway.url);
      await signIn(page, DEMO);
      await liveReady(page);
      await gateway.redis.kill();
      try {
        await expect.poll(() => page.getByRole('alert').filter({ hasText: 'Service unavailable' }).isVisible(), { timeout: 10_000 }).toBe(true);
        await screenshot(page, `${tag}-redis-down`);
      } finally {
        await gateway.redis.restart();
      }
      // Persistence is on for this Redis: the session survived. The page recovers without a reload.
      await expect.poll(() => page.getByRole('alert').filter({ hasText: 'Service unavailable' }).isVisible(), { timeout: 15_000 }).toBe(false);
      await until('checkins accepted again', 15_000, async () => (await checkIn(page, 9301, 2)).startsWith('Accepted'), 500);
    });
  });
}

describeWalk('the pnpm start gateway', () => startPnpmStart({ users: [DEMO, OTHER] }), 'pnpm-start', true);
describeWalk('the nginx gateway', () => startNginxStack({ users: [DEMO, OTHER] }), 'nginx', hasNginx);

describe.skipIf(!hasChromium || !hasNginx)('in Chromium over HTTPS (nginx with a self-signed certificate)', () => {
  let gateway: BrowserGateway;
  let browser: Browser;

  beforeAll(async () => {
    [gateway, browser] = await Promise.all([startNginxStack({ users: [DEMO], tls: true }), launchBrowser()]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('when a person signs in over https, then Chromium stores the session cookie as Secure, HttpOnly and SameSite=Lax, and checkins work', async () => {
    expect(gateway.url).toMatch(/^https:/);
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(gateway.url);
    await signIn(page, DEMO);
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'checkinapp');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: true });
    await liveReady(page);
    expect(await checkIn(page, 9401, 5)).toMatch(/^Accepted /);
    await screenshot(page, 'https-signed-in');
    await context.close();
  });
});
