// Browser walks through the ITB service's pages against a real `itb serve --demo`: a nurse's
// morning (worklist, a refill with a gap caught and reviewed and the second checker's own
// sign-in, the next refill booked), a consultant's flex prescription changed, reviewed,
// committed and read back from the pump, a per-hour flex error stopped at review, the
// patient's own view, travel check and card, appointments, the GP letter, and the
// administrator's audit and users. axe-core runs on every page; each page's screenshot is kept
// in docs/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, browser, check, signIn, signOut } from './harness.mjs';

let server;
let chromium;

before(async () => {
  server = await serve();
  chromium = await browser();
});

after(async () => {
  await chromium?.close();
  server?.stop();
});

/** A date `days` from today, as an <input type=date> takes it. */
function isoDay(days) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

async function newPage() {
  const context = await chromium.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

function text(page, selector) {
  return page.locator(selector).innerText();
}

test('sign in lands each role on its own start page; a wrong password is caught at the field', async () => {
  const page = await newPage();
  await page.goto(`${server.base}/worklist`);
  assert.match(page.url(), /\/sign-in\?next=(%2F|\/)worklist$/);
  await check(page, 'sign-in');
  await page.fill('#username', 'nurse.jones');
  await page.fill('#password', 'not-the-password');
  await page.click('button:has-text("Sign in")');
  assert.equal(await text(page, '.error-summary-title'), 'There is a problem');
  assert.match(await text(page, '.error-summary-list a[href="#username"]'), /username or password is wrong/);
  await check(page, 'sign-in-error');
  await page.fill('#password', 'demo-nurse-jones');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Sign in")')]);
  assert.match(page.url(), /\/worklist$/, 'the sign-in returns to the page asked for');
  await signOut(page);
  await page.goto(`${server.base}/worklist`);
  assert.match(page.url(), /\/sign-in/, 'after sign-out the session no longer works');
  await signIn(page, server.base, 'megan.evans', 'demo-patient');
  assert.match(page.url(), /\/me$/);
  await signOut(page);
  await signIn(page, server.base, 'admin', 'demo-administrator');
  assert.match(page.url(), /\/admin\/audit$/);
  const forbidden = await page.goto(`${server.base}/worklist`);
  assert.equal(forbidden.status(), 403, 'an administrator does not see the clinical worklist');
});

test('the worklist shows overdue pumps first, with counts, filters and a printable list', async () => {
  const page = await newPage();
  await signIn(page, server.base, 'nurse.jones', 'demo-nurse-jones');
  await check(page, 'worklist');
  const counts = await page.locator('.card-grid li').allInnerTexts();
  assert.deepEqual(counts.map((c) => c.replace(/\s+/g, ' ').trim()), [
    '2 Overdue', '0 Refill date unknown', '5 Due within 7 days', '10 Due within 28 days', '17 Due later',
  ]);
  const tags = await page.locator('#worklist tbody tr td:nth-child(3) .tag').allInnerTexts();
  assert.deepEqual(tags.slice(0, 2), ['Overdue', 'Overdue']);
  assert.ok(tags.slice(2).every((t) => t !== 'Overdue'), 'every overdue pump comes before the rest');
  assert.match(await text(page, '#worklist tbody tr:nth-child(1)'), /High risk/);
  assert.ok(await page.locator('#worklist .tag-red:has-text("Booked after the due date")').count() >= 1,
    'a booking after the due date is flagged');
  // The filter works without JavaScript: a GET form.
  await page.selectOption('#bucket', 'due_7');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Apply")')]);
  const due7 = await page.locator('#worklist tbody tr').count();
  assert.equal(due7, 5);
  await page.goto(`${server.base}/worklist?print=1`);
  await check(page, 'worklist-print');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.locator('.header-nav').isVisible(), false, 'the printed list has no navigation');
});

test('a full refill: the gap is caught, reviewed, the second checker signs in, the next refill is booked', async () => {
  const page = await newPage();
  await signIn(page, server.base, 'nurse.jones', 'demo-nurse-jones');
  await page.goto(`${server.base}/patients?q=Roberts`);
  await check(page, 'patients');
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("ROBERTS, Oliver")')]);
  await check(page, 'patient-record');
  assert.equal(await page.locator('svg.chart').count(), 2, 'the reservoir and dose charts are drawn');
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("Refill the pump")')]);
  await check(page, 'refill-form');
  // Nothing filled: every problem is listed and linked to its field.
  await page.click('button:has-text("Empty the reservoir")');
  const problems = await page.locator('.error-summary-list a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(problems, ['#identity_checked', '#lot', '#expires_on', '#second_checker']);
  await check(page, 'refill-form-errors');
  await page.check('#identity_checked');
  await page.fill('#lot', 'BX9001');
  // An expired vial is refused with the clinical reason.
  await page.fill('#expires_on', isoDay(-20));
  await page.selectOption('#second_checker', 'nurse.patel');
  await page.click('button:has-text("Empty the reservoir")');
  assert.match(await text(page, '.error-summary-list'), /expired on \d+ \w+ 20\d\d: do not use it/);
  await page.fill('#expires_on', isoDay(300));
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Empty the reservoir")')]);
  assert.match(page.url(), /\/pumps\/\d+\/review$/);
  // The pump ran fast: less came out than expected, over the 1 mL limit.
  assert.match(await text(page, '#gap-stop'), /Stop: the refill gap is over the limit/);
  await check(page, 'refill-review-gap');
  await page.click('button:has-text("Refill the pump")');
  const missing = await page.locator('.error-summary-list a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(missing, ['#second_checker_password', '#override_reason']);
  await page.fill('#override_reason', 'Pump site and catheter checked, no swelling; patient well with no withdrawal signs. Consultant informed; refill and interrogate in 2 weeks.');
  await page.fill('#second_checker_password', 'demo-nurse-jones');
  await page.click('button:has-text("Refill the pump")');
  assert.match(await text(page, '.error-summary-list'), /not nurse\.patel's/);
  assert.equal(await page.inputValue('#override_reason').then((v) => v.length > 50), true, 'the review typed is kept');
  await page.fill('#second_checker_password', 'demo-nurse-patel');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Refill the pump")')]);
  assert.match(page.url(), /\/pumps\/\d+\/done\?programming=\d+$/);
  assert.match(await text(page, '.confirmation'), /The pump is refilled/);
  assert.match(await text(page, '#recorded'), /Second checker\s+Confirmed with their own sign-in/);
  assert.match(await text(page, '#recorded'), /Your review and reason\s+Pump site and catheter checked/);
  assert.match(await text(page, '#new-dates'), /Next refill due/);
  await check(page, 'refill-done');
  // A date after the refill-due date needs a written reason.
  await page.fill('#on', isoDay(365));
  await page.click('button:has-text("Book the refill")');
  assert.match(await text(page, '.error-summary-list'), /after the refill-due date/);
  await check(page, 'refill-book-late');
  const suggested = await page.evaluate(() => {
    const due = document.querySelector('form.book-refill').getAttribute('data-due');
    const d = new Date(`${due}T12:00:00Z`);
    d.setUTCDate(d.getUTCDate() - 3);
    return d.toISOString().slice(0, 10);
  });
  await page.fill('#on', suggested);
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Book the refill")')]);
  assert.match(await text(page, '.confirmation'), /The appointment is booked/);
  // The gap is on the worklist for review; the consultant records the review.
  await signOut(page);
  await signIn(page, server.base, 'dr.okafor', 'demo-consultant-okafor');
  assert.match(await text(page, '#gaps-title + ul'), /Oliver Roberts/);
  await Promise.all([page.waitForNavigation(), page.click('#gaps-title + ul a:has-text("Oliver Roberts")')]);
  const note = page.locator('textarea[name=note]').first();
  await note.fill('Reviewed in clinic: pump runs about 10 % fast; dose unchanged, interrogate at each refill.');
  await Promise.all([page.waitForNavigation(), page.locator('button:has-text("Record the review")').first().click()]);
  assert.match(await text(page, '.confirmation'), /review of the refill gap is recorded/);
});

test('a flex prescription is changed, reviewed old beside new, committed and read back from the pump', async () => {
  const page = await newPage();
  await signIn(page, server.base, 'dr.okafor', 'demo-consultant-okafor');
  await page.goto(`${server.base}/patients?q=Powell`);
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("POWELL, Owen")')]);
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("Change the prescription")')]);
  await page.check('#mode-flex');
  assert.equal(await page.locator('[data-mode=simple_continuous]').isVisible(), false, 'only the chosen mode shows');
  await page.click('#add-step');
  await page.click('#add-step');
  const starts = page.locator('.step-start');
  const rates = page.locator('.step-rate');
  assert.equal(await starts.count(), 3);
  await starts.nth(0).fill('00:00');
  await starts.nth(1).fill('08:00');
  await starts.nth(2).fill('20:00');
  const current = await rates.nth(0).inputValue();
  await rates.nth(1).fill(String(Number(current) - 20));
  await rates.nth(2).fill(current);
  // The day's total is recomputed as the steps are typed.
  const expected = (Number(current) * 12 + (Number(current) - 20) * 12) / 24;
  assert.equal(await text(page, '#daily-total'), `${expected} micrograms a day`);
  await page.fill('#reason', 'Less drug in the day: daytime weakness on transfers.');
  await check(page, 'prescribe-flex');
  await Promise.all([page.waitForNavigation(), page.click('button.button:has-text("Check the change")')]);
  assert.match(page.url(), /\/pumps\/\d+\/review$/);
  assert.match(await text(page, '#compare'), /simple continuous/);
  assert.match(await text(page, '#compare'), /flex, 3 steps a day/);
  assert.equal(await page.locator('#new-steps tbody tr').count(), 3, 'every new flex step is shown');
  await check(page, 'prescribe-review');
  if (await page.locator('#override_reason').count()) {
    await page.fill('#override_reason', 'Planned change agreed with the patient at the dose review today.');
  }
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Send the change to the pump")')]);
  assert.match(await text(page, '.confirmation'), /The pump accepted the change/);
  await check(page, 'prescribe-done');
  // Read it back from the pump.
  await page.click('a:has-text("Back to the patient")');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Connect and interrogate the pump")')]);
  assert.match(page.url(), /\/pumps\/\d+\/status$/);
  const running = await page.locator('#running-steps tbody tr').allInnerTexts();
  assert.deepEqual(running.map((r) => r.replace(/\s+/g, ' ').trim()), [
    `every day 00:00 ${current} micrograms/day`,
    `every day 08:00 ${Number(current) - 20} micrograms/day`,
    `every day 20:00 ${current} micrograms/day`,
  ]);
  await check(page, 'pump-status');
});

test('a flex rate entered per hour is stopped at review until a written reason is given', async () => {
  const page = await newPage();
  await signIn(page, server.base, 'nurse.jones', 'demo-nurse-jones');
  await page.goto(`${server.base}/patients?q=Hughes`);
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("HUGHES, Gareth")')]);
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("Change the prescription")')]);
  await page.check('#mode-flex');
  await page.click('#add-step');
  await page.locator('.step-start').nth(1).fill('07:00');
  // 100 micrograms a day was meant for the morning step; the pump was given 100 micrograms an
  // hour, 2400 micrograms a day.
  await page.locator('.step-rate').nth(1).fill('2400');
  await page.fill('#reason', 'More in the morning for stiffness on waking.');
  await Promise.all([page.waitForNavigation(), page.click('button.button:has-text("Check the change")')]);
  assert.match(await text(page, '#warnings'), /entered per hour instead of per day/);
  await page.click('button:has-text("Send the change to the pump")');
  assert.match(await text(page, '.error-summary-list a[href="#override_reason"]'), /needs a reason|why this change/i);
  await check(page, 'prescribe-per-hour-stopped');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Cancel: keep the pump as it is")')]);
  assert.match(page.url(), /\/patients\/\d+$/);
  assert.match(await text(page, 'body'), /simple continuous/, 'the pump keeps its old prescription');
});

test("the patient's own view: next refill in plain words, the travel check and the card", async () => {
  const page = await newPage();
  await signIn(page, server.base, 'megan.evans', 'demo-patient');
  // Megan Evans's refill is overdue in the demo: she is told so, with the date and whom to call.
  assert.match(await text(page, '#next-refill'), /Your refill is overdue\s+Your pump was due to be refilled by \w+day \d+ \w+ 20\d\d\. Call the service today/);
  await check(page, 'patient-view');
  await page.fill('#back', isoDay(120));
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Check")')]);
  // Her refill is overdue: whatever the trip, the refill comes first.
  assert.match(await text(page, '#travel-answer'), /^Not enough No\. Your refill is overdue: it was due by \d+ \w+ 20\d\d\. Call the service today, and do not travel/);
  await check(page, 'patient-travel-check');
  await page.fill('#back', isoDay(-30));
  await page.click('button:has-text("Check")');
  assert.match(await text(page, '.error-summary-list'), /in the past/);
  assert.match(await text(page, '#withdrawal'), /Call the service now/);
  await page.goto(`${server.base}/me/card`);
  assert.match(await text(page, '#id-card'), /Baclofen/);
  assert.match(await text(page, '#id-card'), /micrograms\/mL/);
  await check(page, 'patient-card');
  const other = await page.goto(`${server.base}/patients/9`);
  assert.equal(other.status(), 404, "another patient's record looks absent");
});

test('appointments by day and week, a state change, and the GP letter', async () => {
  const page = await newPage();
  await signIn(page, server.base, 'nurse.patel', 'demo-nurse-patel');
  await page.goto(`${server.base}/appointments`);
  await check(page, 'appointments-day');
  const rows = await page.locator('#appointments tbody tr').count();
  assert.ok(rows >= 1);
  const first = page.locator('#appointments tbody tr', { hasText: 'Booked' }).first();
  const who = await first.locator('td').first().innerText();
  await first.locator('select[name=state]').selectOption('arrived');
  await Promise.all([page.waitForNavigation(), first.locator('button:has-text("Change")').click()]);
  assert.match(await text(page, '.confirmation'), /updated/);
  assert.match(await page.locator('#appointments tbody tr', { hasText: who.split('\n')[0] }).first().innerText(), /Arrived/);
  await page.goto(`${server.base}/appointments/week`);
  await check(page, 'appointments-week');
  await page.goto(`${server.base}/patients?q=Jones`);
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("JONES, David")')]);
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("Book an appointment")')]);
  await check(page, 'appointment-book');
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("Cancel")')]);
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("Letter to the GP")')]);
  assert.match(await text(page, 'article.letter'), /NHS number 999 000 0379/);
  assert.match(await text(page, 'article.letter'), /micrograms/);
  await check(page, 'gp-letter');
});

test("the administrator's audit log verifies its chain, and users are added", async () => {
  const page = await newPage();
  await signIn(page, server.base, 'admin', 'demo-administrator');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Verify the chain now")')]);
  assert.match(await text(page, '#verification'), /The chain of \d+ entries is whole/);
  await check(page, 'audit');
  await page.goto(`${server.base}/admin/users`);
  await page.fill('#username', 'nurse.new');
  await page.selectOption('#role', 'nurse_specialist');
  await page.fill('#password', 'short');
  await page.click('button:has-text("Add the user")');
  assert.match(await text(page, '.error-summary-list a[href="#password"]'), /at least 8 characters/);
  await page.fill('#password', 'a-longer-first-password');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Add the user")')]);
  assert.match(await text(page, '.confirmation'), /nurse\.new can now sign in/);
  await check(page, 'users');
});
