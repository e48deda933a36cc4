// Runs graphql-http's GraphQL-over-HTTP server audit against a live server.
//
//   node audit.mjs <url> <api key>
//
// Every request carries the key. Prints one JSON object: the counts per status
// and the audits that did not pass. Exits 1 when any audit warns or errors.
import { serverAudits } from 'graphql-http';

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: node audit.mjs <url> <api key>');
  process.exit(2);
}

const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  return fetch(input, { ...init, headers });
};

const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  results.push({ id: audit.id, name: audit.name, ...(await audit.fn()) });
}

const count = (status) => results.filter((r) => r.status === status).length;
const problems = await Promise.all(
  results
    .filter((r) => r.status !== 'ok')
    .map(async (r) => ({
      id: r.id,
      name: r.name,
      status: r.status,
      reason: r.reason,
      responseStatus: r.response?.status,
      body: r.response ? await r.response.text().catch(() => '') : undefined,
    })),
);
console.log(JSON.stringify({ ok: count('ok'), warn: count('warn'), error: count('error'), problems }, null, 2));
process.exit(problems.length === 0 ? 0 : 1);
