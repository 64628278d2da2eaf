/* global document, window, fetch, EventSource, localStorage */
// The gateway's one-origin page: sign in, visit counter, checkins (live over server-sent events) and
// session management. Plain ES module, no build step; the gateway's CSP allows no inline script or
// style, so views switch with the `hidden` attribute and state shows through classes/data attributes.

const MAX_CHECKINS = 50;
const LIVE_RETRY_MIN_MS = 2_000;
const LIVE_RETRY_MAX_MS = 30_000;
const SIGNED_OUT_KEY = 'ncc:signed-out';

const byId = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el;
};

const ui = {
  loadingView: byId('loading-view'),
  loadingText: byId('loading-text'),
  loadingError: byId('loading-error'),
  loadingRetry: byId('loading-retry'),

  signedOutView: byId('signed-out-view'),
  signinNotice: byId('signin-notice'),
  loginForm: byId('login-form'),
  loginEmail: byId('login-email'),
  loginPassword: byId('login-password'),
  loginError: byId('login-error'),
  loginSubmit: byId('login-submit'),

  signedInView: byId('signed-in-view'),
  whoami: byId('whoami'),
  visits: byId('visits'),
  servedBy: byId('served-by'),

  checkinForm: byId('checkin-form'),
  checkinLocation: byId('checkin-location'),
  checkinStars: byId('checkin-stars'),
  checkinSubmit: byId('checkin-submit'),
  checkinStatus: byId('checkin-status'),

  liveState: byId('live-state'),
  liveAlert: byId('live-alert'),
  checkinsEmpty: byId('checkins-empty'),
  checkinsList: byId('checkins-list'),

  logout: byId('logout'),
  logoutAll: byId('logout-all'),
  sessionsError: byId('sessions-error'),
  sessionsLoading: byId('sessions-loading'),
  sessionsList: byId('sessions-list'),
};

/**
 * `generation` grows on every sign-in and sign-out, so an answer that arrives after the user has
 * signed out (or in again) is recognised as stale and dropped.
 */
const state = {
  user: null,
  generation: 0,
  live: null,
  liveRetryTimer: 0,
  liveRetryDelay: LIVE_RETRY_MIN_MS,
  seenCheckins: new Set(),
};

// ---------------------------------------------------------------------------------------------
// HTTP

class ApiError extends Error {
  constructor(status, code, message, { fields, retryAfter, requestId } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = Array.isArray(fields) ? fields : [];
    this.retryAfter = retryAfter;
    this.requestId = requestId;
    /** True when a 401 on a signed-in call has already sent the page back to the sign-in form. */
    this.handled = false;
  }
}

function fallbackMessage(status) {
  if (status === 401) return 'Authentication required.';
  if (status === 403) return 'You are not allowed to do this.';
  if (status === 429) return 'Too many requests. Try again later.';
  if (status === 502 || status === 503 || status === 504) return 'The service is temporarily unavailable. Please retry shortly.';
  return `Something went wrong (HTTP ${status}).`;
}

/** Retry-After as whole seconds (it may be a number of seconds or an HTTP date), or undefined. */
function parseRetryAfter(value) {
  if (value == null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(1, Math.ceil((at - Date.now()) / 1000));
}

/**
 * One JSON request on this origin. Resolves with the parsed body of a 2xx answer; rejects with an
 * ApiError otherwise. `signedIn` calls that answer 401 mean the session ended elsewhere: the page goes
 * back to the sign-in form before the error reaches the caller (which then marks it `handled`).
 */
async function api(method, url, { body, signedIn = true } = {}) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, 'NETWORK', 'Cannot reach the server. Check your connection and try again.');
  }
  let data = null;
  if ((response.headers.get('Content-Type') ?? '').includes('json')) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) return data ?? {};

  const error = data && typeof data === 'object' && data.error && typeof data.error === 'object' ? data.error : {};
  const failure = new ApiError(
    response.status,
    typeof error.code === 'string' ? error.code : `HTTP_${response.status}`,
    typeof error.message === 'string' && error.message !== '' ? error.message : fallbackMessage(response.status),
    { fields: error.fields, requestId: error.requestId, retryAfter: parseRetryAfter(response.headers.get('Retry-After')) },
  );
  if (response.status === 401 && signedIn) {
    failure.handled = true;
    sessionEnded();
  }
  throw failure;
}

// ---------------------------------------------------------------------------------------------
// Small DOM helpers (textContent only: nothing from the server is ever parsed as HTML)

function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  if (attrs) for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function showMessage(node, message) {
  node.textContent = message;
  node.hidden = message === '';
}

function markInvalid(fieldsToInputs, fields) {
  for (const [field, input] of Object.entries(fieldsToInputs)) {
    if (fields.includes(field)) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}

function setBusy(button, busy) {
  button.setAttribute('aria-disabled', busy ? 'true' : 'false');
  button.classList.toggle('is-busy', busy);
}

const isBusy = (button) => button.getAttribute('aria-disabled') === 'true';

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

function toDate(value) {
  if (value == null) return null;
  const date = new Date(typeof value === 'number' ? value : String(value));
  return Number.isNaN(date.getTime()) ? null : date;
}

function timeElement(date, format, className) {
  if (!date) return el('span', { className, text: 'unknown' });
  return el('time', { className, text: format.format(date), attrs: { datetime: date.toISOString(), title: date.toLocaleString() } });
}

function isToday(date) {
  const now = new Date();
  return date.getFullYear() === now.getFullYear() && date.getMonth() === now.getMonth() && date.getDate() === now.getDate();
}

// ---------------------------------------------------------------------------------------------
// Views

function showView(name) {
  ui.loadingView.hidden = name !== 'loading';
  ui.signedOutView.hidden = name !== 'signed-out';
  ui.signedInView.hidden = name !== 'signed-in';
}

async function boot() {
  showView('loading');
  ui.loadingText.hidden = false;
  showMessage(ui.loadingError, '');
  ui.loadingRetry.hidden = true;
  try {
    const me = await api('GET', '/me', { signedIn: false });
    enterSignedIn(me.user);
  } catch (error) {
    if (error.status === 401) {
      showSignedOut();
      return;
    }
    ui.loadingText.hidden = true;
    showMessage(ui.loadingError, error.message);
    ui.loadingRetry.hidden = false;
  }
}

function showSignedOut({ notice = '' } = {}) {
  state.generation += 1;
  state.user = null;
  closeLive();
  clearSignedInContent();
  ui.loginForm.reset();
  ui.loginForm.removeAttribute('aria-busy');
  setBusy(ui.loginSubmit, false);
  markInvalid({ email: ui.loginEmail, password: ui.loginPassword }, []);
  showMessage(ui.loginError, '');
  showMessage(ui.signinNotice, notice);
  showView('signed-out');
  ui.loginEmail.focus();
}

/** A signed-in call answered 401: the session was ended elsewhere (another tab, another device, expiry). */
function sessionEnded() {
  if (state.user == null) return;
  showSignedOut({ notice: 'Your session has ended. Please sign in again.' });
}

function enterSignedIn(user) {
  state.generation += 1;
  state.user = user;
  const generation = state.generation;
  clearSignedInContent();
  ui.whoami.textContent = `Signed in as ${user.email}`;
  showView('signed-in');
  void loadVisits(generation);
  void loadSessions(generation);
  openLive(generation);
}

function clearSignedInContent() {
  ui.whoami.textContent = '';
  ui.visits.textContent = '';
  ui.servedBy.textContent = '';
  ui.checkinStatus.textContent = '';
  delete ui.checkinStatus.dataset.kind;
  setBusy(ui.checkinSubmit, false);
  markInvalid({ locationId: ui.checkinLocation, starRating: ui.checkinStars }, []);
  ui.checkinsList.replaceChildren();
  ui.checkinsEmpty.hidden = false;
  state.seenCheckins.clear();
  ui.liveAlert.hidden = true;
  setLiveState('connecting', 'Connecting…');
  ui.sessionsList.replaceChildren();
  ui.sessionsLoading.hidden = false;
  showMessage(ui.sessionsError, '');
  setBusy(ui.logout, false);
  setBusy(ui.logoutAll, false);
}

/** Tell this browser's other tabs that its session is over (they check with GET /me). */
function announceSignedOut() {
  try {
    localStorage.setItem(SIGNED_OUT_KEY, String(Date.now()));
  } catch {
    // Storage disabled: the other tabs find out on their next call instead.
  }
}

// ---------------------------------------------------------------------------------------------
// Signing in

ui.loginForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void logIn();
});

async function logIn() {
  if (isBusy(ui.loginSubmit)) return;
  const generation = state.generation;
  const fields = { email: ui.loginEmail, password: ui.loginPassword };
  markInvalid(fields, []);
  showMessage(ui.loginError, '');
  setBusy(ui.loginSubmit, true);
  ui.loginForm.setAttribute('aria-busy', 'true');
  try {
    const answer = await api('POST', '/login', { body: { email: ui.loginEmail.value.trim(), password: ui.loginPassword.value }, signedIn: false });
    if (generation !== state.generation) return;
    showMessage(ui.signinNotice, '');
    enterSignedIn(answer.user);
    ui.whoami.focus();
  } catch (error) {
    if (generation !== state.generation) return;
    markInvalid(fields, error.fields);
    showMessage(ui.loginError, loginErrorMessage(error));
  } finally {
    if (generation === state.generation) {
      setBusy(ui.loginSubmit, false);
      ui.loginForm.removeAttribute('aria-busy');
    }
  }
}

function loginErrorMessage(error) {
  if (error.status === 401) return error.code === 'INVALID_CREDENTIALS' ? error.message : 'Invalid login.';
  if (error.status === 429 && error.retryAfter !== undefined) return `Too many attempts. Try again in ${error.retryAfter} seconds.`;
  return error.message;
}

// ---------------------------------------------------------------------------------------------
// Visits

async function loadVisits(generation) {
  try {
    const answer = await api('GET', '/visits');
    if (generation !== state.generation) return;
    ui.visits.textContent = `Visits: ${answer.visits}`;
    ui.servedBy.textContent = typeof answer.servedBy === 'string' ? `served by ${answer.servedBy}` : '';
  } catch (error) {
    if (error.handled || generation !== state.generation) return;
    ui.visits.textContent = 'Visits: unavailable';
    ui.servedBy.textContent = error.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Checking in

ui.checkinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void checkIn();
});

/** The number typed, or null for an empty field (the API then answers 400 naming the field). */
function numberFrom(input) {
  const value = input.value.trim();
  return value === '' ? null : Number(value);
}

function setCheckinStatus(kind, text) {
  ui.checkinStatus.dataset.kind = kind;
  ui.checkinStatus.textContent = text;
}

async function checkIn() {
  if (isBusy(ui.checkinSubmit) || state.user == null) return;
  const generation = state.generation;
  const fields = { locationId: ui.checkinLocation, starRating: ui.checkinStars };
  markInvalid(fields, []);
  setBusy(ui.checkinSubmit, true);
  setCheckinStatus('pending', 'Checking in…');
  try {
    const answer = await api('POST', '/api/checkin', {
      body: { userId: state.user.id, locationId: numberFrom(ui.checkinLocation), starRating: numberFrom(ui.checkinStars) },
    });
    if (generation !== state.generation) return;
    setCheckinStatus('ok', `Accepted ${answer.id}`);
  } catch (error) {
    if (error.handled || generation !== state.generation) return;
    markInvalid(fields, error.fields);
    setCheckinStatus('error', checkinErrorMessage(error));
  } finally {
    if (generation === state.generation) setBusy(ui.checkinSubmit, false);
  }
}

function checkinErrorMessage(error) {
  if (error.status === 422) return 'Duplicate';
  if (error.retryAfter !== undefined && (error.status === 429 || error.status === 503)) {
    return `${error.message} (retry in ${error.retryAfter} s)`;
  }
  return error.message;
}

// ---------------------------------------------------------------------------------------------
// Recent checkins (server-sent events)

function setLiveState(kind, text) {
  ui.liveState.dataset.state = kind;
  ui.liveState.textContent = text;
}

function setUnavailable(unavailable) {
  ui.liveAlert.hidden = !unavailable;
  if (state.live && state.live.readyState === EventSource.OPEN) setLiveState(unavailable ? 'paused' : 'live', unavailable ? 'Paused' : 'Live');
}

function openLive(generation) {
  closeLive();
  const source = new EventSource('/api/checkins/live');
  state.live = source;
  const current = () => state.live === source && generation === state.generation;

  source.addEventListener('open', () => {
    if (!current()) return;
    state.liveRetryDelay = LIVE_RETRY_MIN_MS;
    setUnavailable(!ui.liveAlert.hidden);
  });
  source.addEventListener('checkin', (event) => {
    if (!current()) return;
    let checkin;
    try {
      checkin = JSON.parse(event.data);
    } catch {
      return;
    }
    setUnavailable(false);
    addCheckin(checkin);
  });
  source.addEventListener('unavailable', () => {
    if (current()) setUnavailable(true);
  });
  source.addEventListener('available', () => {
    if (current()) setUnavailable(false);
  });
  source.addEventListener('unauthenticated', () => {
    if (!current()) return;
    // The session ended elsewhere (Log out everywhere, revoked, expired) and the server ends the
    // stream: ask /me, whose 401 shows the sign-in form, instead of letting EventSource reconnect.
    closeLive();
    void api('GET', '/me').catch(() => undefined);
  });
  source.addEventListener('error', () => {
    if (!current()) return;
    if (source.readyState !== EventSource.CLOSED) {
      // A network error: EventSource reconnects by itself.
      setLiveState('connecting', 'Reconnecting…');
      return;
    }
    // Refused (401 JSON, a 5xx from the gateway, …): EventSource gives up. Find out whether the session
    // is still there (a 401 shows the sign-in form), and if it is, try again a little later.
    closeLive();
    setLiveState('connecting', 'Reconnecting…');
    void api('GET', '/me')
      .catch((error) => (error.handled ? null : undefined))
      .then((result) => {
        if (result === null || generation !== state.generation) return;
        const delay = state.liveRetryDelay;
        state.liveRetryDelay = Math.min(delay * 2, LIVE_RETRY_MAX_MS);
        state.liveRetryTimer = window.setTimeout(() => {
          if (generation === state.generation) openLive(generation);
        }, delay);
      });
  });
}

function closeLive() {
  window.clearTimeout(state.liveRetryTimer);
  state.liveRetryTimer = 0;
  if (state.live) {
    state.live.close();
    state.live = null;
  }
}

function starGlyphs(stars) {
  const n = Math.max(0, Math.min(5, stars));
  return '★'.repeat(n) + '☆'.repeat(5 - n);
}

function addCheckin(checkin) {
  if (checkin == null || typeof checkin !== 'object') return;
  const id = String(checkin.id ?? '');
  if (id !== '' && state.seenCheckins.has(id)) return;
  if (id !== '') state.seenCheckins.add(id);

  const stars = Number.isInteger(checkin.starRating) ? checkin.starRating : null;
  const mine = state.user != null && checkin.userId === state.user.id;
  const receivedAt = toDate(checkin.receivedAt) ?? toDate(Number(id.split('-')[0])) ?? new Date();

  const item = el(
    'li',
    { className: 'is-new', attrs: { 'data-id': id, 'data-user-id': String(checkin.userId), 'data-location-id': String(checkin.locationId) } },
    [
      el('span', { className: 'checkin-what' }, [
        el('span', { className: 'checkin-user', text: `User ${checkin.userId}${mine ? ' (you)' : ''}` }),
        ' at ',
        el('span', { className: 'checkin-location', text: `Location ${checkin.locationId}` }),
        ' ',
        el('span', { className: 'stars' }, [
          el('span', { className: 'stars-glyphs', text: stars == null ? '' : starGlyphs(stars), attrs: { 'aria-hidden': 'true' } }),
          ' ',
          el('span', { className: 'stars-num', text: stars == null ? 'no rating' : `${stars}/5 stars` }),
        ]),
      ]),
      timeElement(receivedAt, isToday(receivedAt) ? timeFormat : dateTimeFormat, 'checkin-time'),
    ],
  );
  ui.checkinsList.prepend(item);
  ui.checkinsEmpty.hidden = true;

  while (ui.checkinsList.children.length > MAX_CHECKINS) {
    const last = ui.checkinsList.lastElementChild;
    state.seenCheckins.delete(last.dataset.id);
    last.remove();
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions

/** "Chrome on Linux" from a user agent string; the full string is shown too. */
function describeUserAgent(userAgent) {
  if (!userAgent) return 'Unknown device';
  const ua = userAgent;
  let browser = 'Unknown browser';
  if (/Edg\//.test(ua)) browser = 'Edge';
  else if (/OPR\/|Opera/.test(ua)) browser = 'Opera';
  else if (/Firefox\//.test(ua)) browser = 'Firefox';
  else if (/Chrom(e|ium)\//.test(ua)) browser = /HeadlessChrome/.test(ua) ? 'Headless Chrome' : 'Chrome';
  else if (/Safari\//.test(ua) && /Version\//.test(ua)) browser = 'Safari';
  else if (/PostmanRuntime/.test(ua)) browser = 'Postman';
  else if (/^curl\//.test(ua)) browser = 'curl';
  else if (/^node|undici|axios/i.test(ua)) browser = 'Node.js client';
  let os = '';
  if (/Windows/.test(ua)) os = 'Windows';
  else if (/Android/.test(ua)) os = 'Android';
  else if (/iPhone|iPad|iPod/.test(ua)) os = 'iOS';
  else if (/Mac OS X|Macintosh/.test(ua)) os = 'macOS';
  else if (/CrOS/.test(ua)) os = 'ChromeOS';
  else if (/Linux/.test(ua)) os = 'Linux';
  return os ? `${browser} on ${os}` : browser;
}

async function loadSessions(generation) {
  try {
    const answer = await api('GET', '/sessions');
    if (generation !== state.generation) return;
    renderSessions(Array.isArray(answer.sessions) ? answer.sessions : []);
    showMessage(ui.sessionsError, '');
  } catch (error) {
    if (error.handled || generation !== state.generation) return;
    showMessage(ui.sessionsError, error.message);
  } finally {
    if (generation === state.generation) ui.sessionsLoading.hidden = true;
  }
}

function renderSessions(sessions) {
  const sorted = [...sessions].sort((a, b) => Number(b.current) - Number(a.current) || String(b.lastSeenAt).localeCompare(String(a.lastSeenAt)));
  const items = sorted.map((session, index) => {
    const infoId = `session-${index}-info`;
    const device = el('span', { className: 'session-device', text: describeUserAgent(session.userAgent) });
    if (session.current) device.append(' ', el('span', { className: 'badge', text: 'this browser' }));
    const info = el('div', { className: 'session-info', attrs: { id: infoId } }, [
      device,
      el('span', { className: 'session-ua', text: session.userAgent ?? 'No user agent recorded' }),
      el('span', { className: 'session-dates' }, [
        el('span', {}, ['Created ', timeElement(toDate(session.createdAt), dateTimeFormat, 'session-created')]),
        el('span', {}, ['Last seen ', timeElement(toDate(session.lastSeenAt), dateTimeFormat, 'session-last-seen')]),
      ]),
    ]);
    const revoke = el('button', { className: 'button button-small', text: 'Revoke', attrs: { type: 'button', 'aria-describedby': infoId } });
    revoke.addEventListener('click', () => void revokeSession(session, revoke));
    return el(
      'li',
      {
        className: session.current ? 'session is-current' : 'session',
        attrs: { 'data-handle': String(session.handle), 'data-current': String(Boolean(session.current)) },
      },
      [info, revoke],
    );
  });
  ui.sessionsList.replaceChildren(...items);
}

async function revokeSession(session, button) {
  if (isBusy(button)) return;
  const generation = state.generation;
  setBusy(button, true);
  showMessage(ui.sessionsError, '');
  try {
    await api('DELETE', `/sessions/${encodeURIComponent(String(session.handle))}`);
    if (generation !== state.generation) return;
    if (session.current) {
      announceSignedOut();
      showSignedOut({ notice: 'You revoked this browser’s session. Sign in again to continue.' });
      return;
    }
    await loadSessions(generation);
  } catch (error) {
    if (error.handled || generation !== state.generation) return;
    if (error.status === 404) {
      await loadSessions(generation); // already gone
      return;
    }
    showMessage(ui.sessionsError, error.message);
    setBusy(button, false);
  }
}

async function signOut(button, url, notice) {
  if (isBusy(button)) return;
  const generation = state.generation;
  setBusy(button, true);
  showMessage(ui.sessionsError, '');
  try {
    const answer = await api('POST', url, { body: {} });
    if (generation !== state.generation) return;
    announceSignedOut();
    showSignedOut({ notice: notice(answer) });
  } catch (error) {
    if (error.handled || generation !== state.generation) return;
    showMessage(ui.sessionsError, error.message);
    setBusy(button, false);
  }
}

ui.logout.addEventListener('click', () => void signOut(ui.logout, '/logout', () => 'You have logged out.'));
ui.logoutAll.addEventListener(
  'click',
  () =>
    void signOut(ui.logoutAll, '/logout-all', (answer) =>
      Number.isInteger(answer.ended)
        ? `You have logged out everywhere (${answer.ended} ${answer.ended === 1 ? 'session' : 'sessions'} ended).`
        : 'You have logged out everywhere.',
    ),
);

// ---------------------------------------------------------------------------------------------
// Staying in step with other tabs

window.addEventListener('storage', (event) => {
  if (event.key !== SIGNED_OUT_KEY || state.user == null) return;
  // Another tab of this browser signed out: confirm with the server (a 401 shows the sign-in form).
  void api('GET', '/me').catch(() => undefined);
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.user != null) void loadSessions(state.generation);
});

ui.loadingRetry.addEventListener('click', () => void boot());

void boot();
