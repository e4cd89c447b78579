// Runs db/init/webchat.js as mongosh would (globals `db`, `print`, `require`, `process`), with
// a `db` that records the commands instead of sending them: no MongoDB server runs here, and
// the stand-in accepts anything. Prints the recorded commands as JSON.
//   node mongosh_recorder.js <script> <existing collections,comma-separated> <existing users,...>
const fs = require('fs');
const vm = require('vm');

const [script, collections = '', users = ''] = process.argv.slice(2);
const existingCollections = collections.split(',').filter(Boolean);
const existingUsers = users.split(',').filter(Boolean);
const recorded = [];

function database(name) {
  return {
    getSiblingDB: (other) => database(other),
    getCollectionNames: () => existingCollections,
    runCommand: (command) => {
      recorded.push({ db: name, command });
      return { ok: 1 };
    },
    getUser: (user) => (existingUsers.includes(user) ? { user } : null),
    createUser: (spec) => recorded.push({ db: name, command: { createUser: spec.user, ...spec } }),
    updateUser: (user, spec) => recorded.push({ db: name, command: { updateUser: user, ...spec } }),
  };
}

vm.runInNewContext(fs.readFileSync(script, 'utf8'), {
  db: database('test'),
  print: () => {},
  require,
  process,
});
console.log(JSON.stringify(recorded));
