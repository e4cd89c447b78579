//! MongoDB: connecting, the indexes from `db/schema.json`, and the typed collections.
//!
//! All BSON (`doc!`) stays inside this module; the rest of the website sees typed documents and
//! queries named by intent.

mod error;
pub mod login_failures;
mod object_id_filter;
pub mod rooms;
pub mod schema;
pub mod sessions;
pub mod ticket_grants;
pub mod users;

use std::time::Duration;

use anyhow::Context;
use mongodb::bson::doc;
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use mongodb::{Client, Collection, Database};

use crate::config::Config;
use crate::metrics::Metrics;

pub use error::{DbError, Unavailable};
pub use login_failures::LoginFailureDoc;
pub use object_id_filter::ObjectIdFilter;
pub use rooms::RoomDoc;
pub use sessions::SessionDoc;
pub use ticket_grants::TicketGrantDoc;
pub use users::UserDoc;

#[derive(Clone, Debug)]
pub struct Db {
    database: Database,
    users: Collection<UserDoc>,
    rooms: Collection<RoomDoc>,
    sessions: Collection<SessionDoc>,
    login_failures: Collection<LoginFailureDoc>,
    ticket_grants: Collection<TicketGrantDoc>,
    /// `MONGODB_TIMEOUT_SECS`: how long a session or throttle query may take in all.
    timeout: Duration,
    object_id_filter: ObjectIdFilter,
}

impl Db {
    /// Connects and waits up to `config.mongodb_startup_wait` for a ping, so the website can start
    /// before MongoDB in a compose stack.
    pub async fn connect(config: &Config, metrics: &Metrics) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(config.mongodb_uri.expose())
            .await
            .context("MONGODB_URI is not a valid MongoDB connection string")?;
        // A request waits at most this long for an unreachable server, then answers 503.
        options.server_selection_timeout = Some(config.mongodb_timeout);
        options.connect_timeout = Some(config.mongodb_timeout);
        options.app_name = Some("website".into());
        options.command_event_handler = metrics.mongodb_commands();
        let client = Client::with_options(options).context("creating the MongoDB client")?;
        warn_unless_schema_database(&config.mongodb_db)?;
        let mut db = Self::new(client.database(&config.mongodb_db), config.mongodb_timeout);

        let deadline = tokio::time::Instant::now() + config.mongodb_startup_wait;
        loop {
            match db.ping().await {
                Ok(()) => {
                    db.object_id_filter = db.detect_object_id_filter().await;
                    return Ok(db);
                }
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, "MongoDB is not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error).context(format!(
                        "MongoDB did not answer within {:?}",
                        config.mongodb_startup_wait
                    )));
                }
            }
        }
    }

    fn new(database: Database, timeout: Duration) -> Self {
        // Accounts and rooms are acknowledged only once they are in the journal: a crash right
        // after "registered" must not lose the account. (One server: majority adds nothing.)
        // Sessions and login failures are worth less than the time a journal write takes.
        let durable = CollectionOptions::builder()
            .write_concern(WriteConcern::builder().journal(true).build())
            .build();
        Self {
            users: database.collection_with_options(users::COLLECTION, durable.clone()),
            rooms: database.collection_with_options(rooms::COLLECTION, durable),
            sessions: database.collection(sessions::COLLECTION),
            login_failures: database.collection(login_failures::COLLECTION),
            ticket_grants: database.collection(ticket_grants::COLLECTION),
            database,
            timeout,
            object_id_filter: ObjectIdFilter::Equality,
        }
    }

    async fn detect_object_id_filter(&self) -> ObjectIdFilter {
        let info = self
            .bounded(self.database.run_command(doc! { "buildInfo": 1 }))
            .await;
        let process = info
            .as_ref()
            .ok()
            .and_then(|info| info.get_str("process").ok());
        let filter = ObjectIdFilter::for_process(process);
        if filter != ObjectIdFilter::Equality {
            tracing::warn!(
                ?process,
                "the MongoDB stand-in: ObjectId filters are written as a one-element $in"
            );
        }
        filter
    }

    /// Runs `query` for at most `MONGODB_TIMEOUT_SECS`. The driver bounds finding a server and
    /// connecting, not an answer on a connection it has: a server that accepts and then hangs would
    /// otherwise hold a session or throttle query until the request's deadline.
    async fn bounded<T>(
        &self,
        query: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, DbError> {
        match tokio::time::timeout(self.timeout, query).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(DbError::Unavailable(Unavailable::NoAnswerWithin(
                self.timeout,
            ))),
        }
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        self.bounded(self.database.run_command(doc! { "ping": 1 }))
            .await?;
        Ok(())
    }

    /// Creates the indexes `db/schema.json` lists. Where the server refuses one, startup still
    /// succeeds if an equivalent index exists (the MongoDB stand-in reports an existing index under
    /// another name, and cannot re-create a text index after a restart); a real conflict fails.
    pub async fn ensure_indexes(&self) -> anyhow::Result<()> {
        let schema = schema::Schema::embedded()?;
        for (collection, spec) in &schema.collections {
            let coll = self
                .database
                .collection::<mongodb::bson::Document>(collection);
            for (index, model) in spec.indexes.iter().zip(spec.index_models()) {
                let Err(error) = coll.create_index(model).await else {
                    continue;
                };
                if index_present(&coll, index).await? {
                    tracing::warn!(
                        collection,
                        index = index.name,
                        %error,
                        "an equivalent index exists already; keeping it"
                    );
                } else {
                    return Err(anyhow::Error::new(error)
                        .context(format!("creating index {} on {collection}", index.name)));
                }
            }
        }
        Ok(())
    }
}

/// For the integration tests only (feature `test-support`): the data behind the website's back.
#[cfg(feature = "test-support")]
impl Db {
    pub fn users(&self) -> &Collection<UserDoc> {
        &self.users
    }

    pub fn rooms(&self) -> &Collection<RoomDoc> {
        &self.rooms
    }

    pub fn sessions(&self) -> &Collection<SessionDoc> {
        &self.sessions
    }

    pub fn login_failures(&self) -> &Collection<LoginFailureDoc> {
        &self.login_failures
    }

    pub fn ticket_grants(&self) -> &Collection<TicketGrantDoc> {
        &self.ticket_grants
    }

    /// Removes an account and ends its sessions on every replica: a user deleted behind the
    /// website's back.
    pub async fn delete_user(&self, id: mongodb::bson::oid::ObjectId) -> Result<bool, DbError> {
        let result = self.users.delete_one(doc! { "_id": id }).await?;
        self.delete_sessions_of(id).await?;
        Ok(result.deleted_count == 1)
    }
}

/// `db/schema.json` names the database that MongoDB's init script prepares: validators and the
/// application's user. Any other `MONGODB_DB` still works (the tests use one database each), but it
/// has no validators and the deployment's user may not be allowed in, so startup says so.
fn warn_unless_schema_database(mongodb_db: &str) -> anyhow::Result<()> {
    let schema = schema::Schema::embedded().context("reading db/schema.json")?;
    if mongodb_db != schema.database {
        tracing::warn!(
            mongodb_db,
            schema_database = schema.database,
            "MONGODB_DB is {mongodb_db:?}, but db/schema.json sets up {:?}: this database has no \
             validators, and the deployment's MongoDB user may not be allowed to use it",
            schema.database
        );
    }
    Ok(())
}

async fn index_present(
    collection: &Collection<mongodb::bson::Document>,
    index: &schema::IndexSpec,
) -> anyhow::Result<bool> {
    use futures_util::TryStreamExt;
    if index.is_text() {
        // A $text query fails without a text index on the collection.
        let probe = collection
            .find_one(doc! { "$text": { "$search": "index probe" } })
            .await;
        return Ok(probe.is_ok());
    }
    let wanted: Vec<&String> = index.key.keys().collect();
    let existing: Vec<mongodb::IndexModel> = collection.list_indexes().await?.try_collect().await?;
    Ok(existing.iter().any(|model| {
        let unique = model
            .options
            .as_ref()
            .and_then(|o| o.unique)
            .unwrap_or(false);
        model.keys.keys().collect::<Vec<_>>() == wanted && unique == index.unique.unwrap_or(false)
    }))
}
