// The console end to end in Debian's Chromium, driven by playwright-core.
//
// Run by tests/e2e/test_console.py: `node web/e2e/console.mjs CONFIG.json`. It plays an admin,
// two users and a user out of quota against a real gateway, takes the screenshots linked from
// docs/ui.md, and prints one JSON report on stdout that the pytest test asserts on. Every wait
// is for a selector or a condition in the page, never a fixed delay.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Person, WIDTHS } from './person.mjs';

const config = JSON.parse(await readFile(process.argv[2], 'utf8'));
const report = { steps: [], observations: {}, screenshots: [] };
const obs = report.observations;
const started = Date.now();

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (error) {
    error.message = `step "${name}": ${error.message}`;
    report.failure = { step: name, message: error.message, screens: [] };
    for (const p of people) {
      const file = join(config.failures, `failure-${p.name}.png`);
      await p.page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      report.failure.screens.push(file);
    }
    throw error;
  }
  report.steps.push({ name, ms: Date.now() - t0 });
}

await mkdir(config.screenshots, { recursive: true });
const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  // playwright-core gives every launch a fresh, empty --user-data-dir of its own.
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const people = [];
const person = async (name) => {
  const p = await Person.open(browser, config.url, name, (file) => join(config.screenshots, file));
  people.push(p);
  return p;
};

try {
  const admin = await person('admin');
  const { page } = admin;

  await step('the sign-in page, and a wrong key refused with a message', async () => {
    await admin.goto('/ui/');
    await page.getByTestId('signin-form').waitFor();
    report.screenshots.push(...(await admin.shoot('signin')));
    await admin.signIn('lw-not-a-real-key-000000000000000000000');
    obs.wrong_key_message = await page.getByTestId('signin-error').innerText();
  });

  await step('the admin signs in', async () => {
    await admin.signIn(config.admin_key);
    obs.admin_role = await page.getByTestId('role').innerText();
    await page.getByTestId('users-table').waitFor();
  });

  await step('the admin creates a user and copies the key shown once', async () => {
    const form = page.getByTestId('create-user');
    await form.getByTestId('user-id').fill('alice');
    await form.getByTestId('user-name').fill(config.hostile_name);
    await form.getByTestId('user-rpm').fill('60');
    await form.getByTestId('user-quota').fill('100000');
    await form.getByTestId('create-user-submit').click();
    const shown = await form.getByTestId('secret-value').inputValue();
    await form.getByTestId('copy-secret').click();
    await form.getByText('Copied to the clipboard.').waitFor();
    obs.copied_key = await page.evaluate(() => navigator.clipboard.readText());
    obs.shown_key = shown;
    const row = page.getByTestId('user-row-alice');
    await row.waitFor();
    obs.hostile_name_text = await row.locator('.hint').first().innerText();
    obs.hostile_elements = await row.locator('b, img, script').count();
    await form.getByText('I have stored it').click();

    await form.getByTestId('user-id').fill('bob');
    await form.getByTestId('create-user-submit').click();
    obs.bob_key = await form.getByTestId('secret-value').inputValue();
    await page.getByTestId('user-row-bob').waitFor();
    report.screenshots.push(...(await admin.shoot('admin-users')));
    await form.getByText('I have stored it').click();
  });

  await step('the admin puts alice in a team with a budget, and gives her one (the API)', async () => {
    // The console has no team editor: these are the admin API's calls (docs/api.md, "Teams").
    const headers = { authorization: `Bearer ${config.admin_key}` };
    const member = await page.request.put(`/admin/teams/${config.team_id}/members/alice`, { headers });
    const budget = await page.request.patch('/admin/users/alice', { headers, data: config.alice_budget });
    if (!member.ok() || !budget.ok()) throw new Error(`${member.status()} ${budget.status()}`);
  });

  await step('the admin registers a Mock model and sets its fallback', async () => {
    await admin.nav('models');
    const form = page.getByTestId('model-form');
    await form.getByTestId('model-id').fill('mock-stream');
    await form.getByTestId('model-vendor').selectOption('Mock');
    await form.getByTestId('model-api-key').fill(config.vendor_key);
    await form.getByTestId('model-params').fill('{"chunk_delay_ms": 40}');
    await form.getByTestId('model-submit').click();
    const row = page.getByTestId('model-row-mock-stream');
    await row.waitFor();
    obs.model_key_cell = await row.locator('td').nth(2).innerText();
    await row.getByTestId('model-fallbacks-edit').click();
    const editor = page.getByTestId('fallbacks-editor');
    await editor.getByTestId('fallback-add').selectOption('mock');
    await editor.getByTestId('fallback-save').click();
    await row.getByTestId('model-fallbacks').getByText('mock').waitFor();
    obs.fallbacks_cell = await row.getByTestId('model-fallbacks').innerText();
    report.screenshots.push(...(await admin.shoot('admin-models')));
  });

  await step('the admin writes a transform script, sees the interpreter refuse it, tests it', async () => {
    const row = page.getByTestId('model-row-mock-stream');
    await row.getByTestId('model-script').click();
    const editor = page.getByTestId('script-editor');
    const source = editor.getByTestId('script-source');
    await source.fill('def on_request(req, ctx)\n    return req\n');
    await editor.getByTestId('script-save').click();
    obs.script_error = await editor.getByTestId('script-error').innerText();
    await source.fill('def on_request(req, ctx):\n    req["seen_by"] = ctx["user_id"]\n    return req\n');
    await editor.getByTestId('script-save').click();
    const pane = page.getByTestId('script-test');
    await pane.waitFor();
    await pane.getByTestId('script-run').click();
    const result = pane.getByTestId('script-result');
    await result.waitFor();
    obs.script_outcome = await result.locator('.badge').innerText();
    obs.script_result = await result.locator('pre').last().innerText();
    await editor.getByTestId('script-delete').click();
    await editor.getByTestId('script-delete-confirm').click();
    await page.getByText('Save the script to test it.').waitFor();
  });

  await step('the admin registers the MCP server and sees its tools', async () => {
    await admin.nav('tools');
    const form = page.getByTestId('server-form');
    await form.getByTestId('server-name').fill('weather');
    await form.getByTestId('server-command').fill(config.mcp_command);
    await form.getByTestId('server-args').fill(config.mcp_args.join('\n'));
    await form.getByTestId('server-submit').click();
    const server = page.getByTestId('server-weather');
    await server.waitFor();
    obs.server_status = await server.getByTestId('server-status').innerText();
    await server.getByTestId('server-tools').click();
    await server.getByTestId('tools-list').getByText('get_weather').first().waitFor();
    report.screenshots.push(...(await admin.shoot('admin-tools')));
  });

  const alice = await person('alice');
  const watcher = await person('alice-usage-tab');
  const bob = await person('bob');

  await step('the user signs in with the copied key; the usage chart starts at 0', async () => {
    await watcher.goto('/ui/');
    await watcher.signIn(obs.copied_key);
    obs.user_role = await watcher.page.getByTestId('role').innerText();
    await watcher.page.getByTestId('chart-my-usage').waitFor();
    obs.usage_before = Number(await watcher.page.getByTestId('chart-my-usage').getAttribute('data-total'));
    obs.nav_links = await watcher.page.locator('nav a').allInnerTexts();
    obs.storage = await watcher.page.evaluate(() => ({
      session_key: sessionStorage.getItem('lowart.key'),
      local_items: localStorage.length,
      cookie: document.cookie,
      url: location.href,
    }));
  });

  await step('the user chats in the playground, streamed', async () => {
    await alice.goto('/ui/');
    await alice.signIn(obs.copied_key);
    await alice.nav('playground');
    const p = alice.page;
    await p.getByTestId('pg-model').selectOption('mock-stream');
    await p.evaluate(() => {
      // Record every text the streaming bubble shows, to prove the answer arrived in pieces.
      window.__partials = [];
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid=pg-streaming]')?.textContent;
        if (text && window.__partials.at(-1) !== text) window.__partials.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await p.getByTestId('pg-prompt').fill(config.chat_prompt);
    await p.getByTestId('pg-send').click();
    await p.locator('[data-testid=pg-meta][data-streaming=false]').waitFor();
    obs.chat_answer = await p.getByTestId('pg-assistant').last().innerText();
    obs.chat_partials = await p.evaluate(() => window.__partials);
    obs.chat_served = await p.getByTestId('pg-served').innerText();
    obs.chat_tokens = Number(await p.getByTestId('pg-tokens').getAttribute('data-total'));
    obs.chat_chunks = Number(await p.getByTestId('pg-meta').getAttribute('data-chunks'));
  });

  await step('the user goes on through the Responses API', async () => {
    const p = alice.page;
    await p.getByTestId('pg-wire').selectOption('responses');
    for (const words of ['First turn through Responses', 'Second turn through Responses']) {
      await p.getByTestId('pg-prompt').fill(words);
      await p.getByTestId('pg-send').click();
      await p.getByTestId('pg-assistant').filter({ hasText: words }).waitFor();
      await p.locator('[data-testid=pg-meta][data-streaming=false]').waitFor();
    }
    obs.responses_answer = await p.getByTestId('pg-assistant').last().innerText();
    obs.responses_id = await p.getByTestId('pg-response-id').innerText();
    obs.responses_events = Number(await p.getByTestId('pg-meta').getAttribute('data-chunks'));
    obs.responses_tokens = Number(await p.getByTestId('pg-tokens').getAttribute('data-total'));
    await p.getByTestId('pg-wire').selectOption('chat');
  });

  await step('the usage chart rises in the tab left open', async () => {
    const chart = watcher.page.getByTestId('chart-my-usage');
    await watcher.page.waitForFunction(
      () => Number(document.querySelector('[data-testid=chart-my-usage]').dataset.total) > 0,
    );
    obs.usage_after = Number(await chart.getAttribute('data-total'));
  });

  await step('a tool call pauses', async () => {
    const p = alice.page;
    await p.getByTestId('pg-model').selectOption('weather-bot');
    await p.getByTestId('pg-servers').fill('weather');
    await p.getByTestId('pg-prompt').fill('What is the weather in Paris?');
    await p.getByTestId('pg-send').click();
    obs.pause_notice = await p.getByTestId('pg-paused').innerText();
    await p.getByTestId('pending-count').waitFor();
    obs.pending_badge = await p.getByTestId('pending-count').innerText();
    report.screenshots.push(...(await alice.shoot('playground')));
  });

  await step("another user's inbox does not show it", async () => {
    await bob.goto('/ui/inbox');
    await bob.signIn(obs.bob_key);
    await bob.page.getByTestId('inbox-empty').waitFor();
    obs.bob_inbox_before = await bob.page.locator('main').innerText();
    obs.bob_badge_before = await bob.page.getByTestId('pending-count').count();
  });

  await step('the owner approves it in the inbox and the answer arrives', async () => {
    await alice.nav('inbox');
    const call = alice.page.getByTestId('tool-call');
    await call.waitFor();
    obs.inbox_server = await call.getByTestId('call-server').innerText();
    obs.inbox_tool = await call.getByTestId('call-tool').innerText();
    obs.inbox_arguments = await call.getByTestId('call-arguments').innerText();
    obs.inbox_session_text = await alice.page.getByTestId('inbox-session').locator('.hint').first().innerText();
    report.screenshots.push(...(await alice.shoot('inbox')));
    await call.getByTestId('approve-call').click();
    obs.inbox_answer = await alice.page.getByTestId('outcome-answer').innerText();
    await alice.page.getByTestId('inbox-empty').waitFor();
  });

  await step("the other user's console still shows nothing", async () => {
    await bob.page.reload();
    await bob.page.getByTestId('inbox-empty').waitFor();
    obs.bob_inbox_after = await bob.page.locator('body').innerText();
  });

  await step('jobs: a chat job and an image job with live progress, the image inline', async () => {
    const p = alice.page;
    await alice.nav('playground');
    await p.getByTestId('pg-model').selectOption('mock-stream');
    await p.getByTestId('pg-servers').fill('');
    await p.getByTestId('pg-async').check();
    await p.getByTestId('pg-prompt').fill('An answer for later');
    await p.getByTestId('pg-send').click();
    await p.getByText('started: follow it in').waitFor();
    await p.getByTestId('pg-model').selectOption('sd');
    await p.getByTestId('pg-image-prompt').fill('a lighthouse at dusk');
    await p.getByTestId('pg-image-send').click();
    await p.getByTestId('pg-image-started').waitFor();
    await alice.nav('jobs');
    await p.evaluate(() => {
      window.__progress = [];
      new MutationObserver(() => {
        for (const bar of document.querySelectorAll('[data-testid=job-progress]')) {
          window.__progress.push(bar.value);
        }
      }).observe(document.body, { subtree: true, attributes: true, childList: true });
    });
    await p.locator('[data-testid=job-images] img').first().waitFor();
    await p.waitForFunction(() => {
      const img = document.querySelector('[data-testid=job-images] img');
      return img && img.complete && img.naturalWidth > 0;
    });
    await p.getByTestId('job-answer').first().waitFor();
    obs.job_statuses = await p.getByTestId('job-status').allInnerTexts();
    obs.job_answer = await p.getByTestId('job-answer').first().innerText();
    obs.image_width = await p.locator('[data-testid=job-images] img').first().evaluate((img) => img.naturalWidth);
    obs.progress_seen = await p.evaluate(() => [...new Set(window.__progress)]);
    report.screenshots.push(...(await alice.shoot('jobs')));
  });

  await step('429: a user out of quota gets a message, not a blank page', async () => {
    const carol = await person('carol');
    await carol.goto('/ui/');
    await carol.signIn(config.carol_key);
    await carol.nav('playground');
    await carol.page.getByTestId('pg-prompt').fill('Hello?');
    await carol.page.getByTestId('pg-send').click();
    obs.quota_message = await carol.page.getByTestId('pg-error').innerText();
  });

  await step('403: a user disabled while signed in gets a message', async () => {
    await admin.nav('users');
    await page.getByTestId('user-row-bob').getByTestId('user-disable').click();
    await page.getByTestId('user-row-bob').getByText('disabled').waitFor();
    await bob.page.getByRole('alert').waitFor();
    obs.disabled_message = await bob.page.getByRole('alert').first().innerText();
  });

  await step('the admin sees usage across users, per day and per model, filtered', async () => {
    await admin.nav('usage-all');
    await page.waitForFunction(
      () => Number(document.querySelector('[data-testid=chart-days]')?.dataset.total) > 0,
    );
    obs.admin_usage_all = Number(await page.getByTestId('chart-days').getAttribute('data-total'));
    await page.getByTestId('filter-user').selectOption('bob');
    await page.waitForFunction(
      () => document.querySelector('[data-testid=chart-days]')?.dataset.total === '0',
    );
    await page.getByTestId('filter-user').selectOption('alice');
    await page.waitForFunction(
      () => Number(document.querySelector('[data-testid=chart-days]')?.dataset.total) > 0,
    );
    obs.admin_usage_alice = Number(await page.getByTestId('chart-days').getAttribute('data-total'));
    obs.admin_usage_models = await page.getByTestId('filter-model').locator('option').allInnerTexts();
    report.screenshots.push(...(await admin.shoot('admin-usage')));
  });

  await step('the admin sees spend per team and per user against budgets, and exports it', async () => {
    await admin.nav('spend');
    await page.locator('[data-testid=spend-team-row][data-id=studio]').waitFor();
    const rows = (kind) =>
      page.getByTestId(`spend-${kind}-row`).evaluateAll((trs) =>
        trs.map((tr) => ({
          id: tr.dataset.id,
          spent: tr.querySelector('[data-testid=spend-spent]').textContent,
          budget: tr.querySelector('[data-testid=spend-budget]').textContent,
          used: tr.querySelector('[data-testid=spend-percent]').textContent,
        })),
      );
    obs.spend_period = await page.getByTestId('spend-period').inputValue();
    const range = page.getByTestId('spend-range');
    obs.spend_range = { since: await range.getAttribute('data-since'), until: await range.getAttribute('data-until') };
    obs.spend_teams = await rows('team');
    obs.spend_users = await rows('user');
    obs.spend_team_total = await page.getByTestId('chart-spend-teams').getAttribute('data-total');
    report.screenshots.push(...(await admin.shoot('admin-spend')));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('spend-csv-team').click()]);
    obs.spend_csv_name = download.suggestedFilename();
    obs.spend_csv = await readFile(await download.path(), 'utf8');
  });

  await step("the user's own view shows their budget and their team's", async () => {
    await watcher.nav('playground');
    await watcher.nav('usage'); // a fresh load, after every request
    await watcher.page.getByTestId('my-budget').first().waitFor();
    obs.my_budgets = await watcher.page.getByTestId('my-budget').evaluateAll((cards) =>
      cards.map((card) => ({
        scope: card.dataset.scope,
        id: card.dataset.id,
        spent: card.querySelector('[data-testid=my-budget-spent]').dataset.spent,
        budget: card.querySelector('[data-testid=my-budget-of]').dataset.budget,
        remaining: card.querySelector('[data-testid=my-budget-of]').dataset.remaining,
        text: card.innerText,
      })),
    );
    report.screenshots.push(...(await watcher.shoot('usage')));
  });

  await step('the admin reads the audit log of these changes, filtered by action', async () => {
    await admin.nav('audit');
    await page.getByTestId('audit-entry').first().waitFor();
    const actions = () => page.getByTestId('audit-entry').locator('td:nth-child(3)').allInnerTexts();
    obs.audit_actions = await actions();
    obs.audit_text = await page.getByTestId('audit-entries').innerText();
    report.screenshots.push(...(await admin.shoot('admin-audit')));
    await page.getByTestId('audit-action').fill('models.create');
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('[data-testid=audit-entry] td:nth-child(3)')];
      return cells.length > 0 && cells.every((td) => td.textContent === 'models.create');
    });
    obs.audit_filtered = await actions();
  });

  await step('the admin finds a request log by user and reads its redacted bodies', async () => {
    const users = () => page.getByTestId('request-logs-table').locator('tbody tr td:nth-child(3)');
    await admin.nav('request-logs');
    await page.getByTestId('request-log-open').first().waitFor();
    obs.request_log_all_users = [...new Set(await users().allInnerTexts())].sort();
    await page.getByTestId('filter-log-user').selectOption('alice');
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('[data-testid=request-logs-table] tbody tr td:nth-child(3)')];
      return cells.length > 0 && cells.every((cell) => cell.innerText === 'alice');
    });
    obs.request_log_users = [...new Set(await users().allInnerTexts())];
    await page.getByTestId('request-log-open').last().click();
    await page.getByTestId('request-log-bodies').waitFor();
    obs.request_log_bodies = await page.getByTestId('request-log-bodies').innerText();
  });

  obs.widths = WIDTHS;
  obs.overflow = Object.fromEntries(people.flatMap((p) => Object.entries(p.overflow)));
  obs.csp_violations = (await Promise.all(people.map((p) => p.cspViolations()))).flat();
  obs.page_errors = people.flatMap((p) => p.errors);
  obs.key_in_urls = people.flatMap((p) => p.urls).filter((u) => /lw-[A-Za-z0-9_-]{20,}/.test(u));
  obs.requested_paths = [...new Set(people.flatMap((p) => p.urls.map((u) => new URL(u).pathname)))];
} finally {
  await browser.close();
  report.total_ms = Date.now() - started;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
