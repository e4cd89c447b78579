// Initialises Webchat's database. The official mongo image runs this with mongosh, signed in as
// the root user, only when the data directory is empty (first start). It is idempotent, so it can
// also be run again by hand on a live database to apply a changed schema.json:
//   docker compose exec db sh -c 'mongosh -u "$MONGO_INITDB_ROOT_USERNAME" -p "$MONGO_INITDB_ROOT_PASSWORD" \
//     --authenticationDatabase admin --quiet /docker-entrypoint-initdb.d/10-webchat.js'
//
// Environment: MONGO_APP_USERNAME, MONGO_APP_PASSWORD — the user the website connects as.
// Optional: WEBCHAT_SCHEMA — path of schema.json (default /opt/webchat/schema.json).

const fs = require('fs');

const schemaPath = process.env.WEBCHAT_SCHEMA || '/opt/webchat/schema.json';
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
const appUser = process.env.MONGO_APP_USERNAME;
const appPassword = process.env.MONGO_APP_PASSWORD;
if (!appUser || !appPassword) {
  throw new Error('MONGO_APP_USERNAME and MONGO_APP_PASSWORD must be set for the website user');
}

const webchat = db.getSiblingDB(schema.database);

function check(result, what) {
  if (!result || result.ok !== 1) {
    throw new Error(`${what} failed: ${JSON.stringify(result)}`);
  }
  return result;
}

// Collections first, each with its validator: documents that do not match are refused (strict,
// error), whoever writes them.
const existing = webchat.getCollectionNames();
for (const [name, spec] of Object.entries(schema.collections)) {
  const validation = { validator: spec.validator, validationLevel: 'strict', validationAction: 'error' };
  if (existing.includes(name)) {
    check(webchat.runCommand({ collMod: name, ...validation }), `collMod ${name}`);
  } else {
    check(webchat.runCommand({ create: name, ...validation }), `create ${name}`);
  }
  // schema.json writes indexes in the createIndexes command's own format; creating an index
  // that exists with the same options is a no-op.
  check(webchat.runCommand({ createIndexes: name, indexes: spec.indexes }), `createIndexes ${name}`);
  print(`webchat: collection ${schema.database}.${name} with ${spec.indexes.length} index(es)`);
}

// The website's user last: the healthcheck signs in as this user, so the database counts as
// healthy only once everything above is in place. readWrite on this one database, nothing else:
// it cannot create users, change validators or touch another database.
const roles = [{ role: 'readWrite', db: schema.database }];
if (webchat.getUser(appUser)) {
  webchat.updateUser(appUser, { pwd: appPassword, roles });
  print(`webchat: updated user ${appUser} (readWrite on ${schema.database})`);
} else {
  webchat.createUser({ user: appUser, pwd: appPassword, roles });
  print(`webchat: created user ${appUser} (readWrite on ${schema.database})`);
}
