// Container healthcheck (mongosh --nodb): healthy when the website's user can sign in to the
// webchat database and ping it. That is true only after init/webchat.js created the user, unlike
// a bare ping, which mongod also answers while the entrypoint is still initialising.
const fs = require('fs');

const database = JSON.parse(fs.readFileSync('/opt/webchat/schema.json', 'utf8')).database;
const user = encodeURIComponent(process.env.MONGO_APP_USERNAME || '');
const password = encodeURIComponent(process.env.MONGO_APP_PASSWORD || '');
const uri = `mongodb://${user}:${password}@127.0.0.1:27017/${database}` +
  `?authSource=${database}&serverSelectionTimeoutMS=3000&connectTimeoutMS=3000`;

let status = 1;
try {
  status = connect(uri).runCommand({ ping: 1 }).ok === 1 ? 0 : 1;
} catch (error) {
  print(`unhealthy: ${error.message}`);
}
// Outside the try: quit() must not meet the catch above.
quit(status);
