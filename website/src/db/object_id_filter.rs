//! Filters on ObjectId fields other than `_id` (`rooms.owner_id`, `sessions.user_id`), all through
//! [`Db::object_id_is`], so none has to remember the MongoDB stand-in's bug: nx-27017 (0.8.1 and
//! earlier) matches nothing with `{field: id}` on any field but `_id`, and answers a one-element
//! `{field: {$in: [id]}}`, which MongoDB plans as the same equality. [`Db::connect`] picks the
//! `$in` form only for the stand-in (`buildInfo.process`). The stand-in's `count` fails both
//! forms, so a count on such a field reads the ids instead (`ticket_grants`).

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};

use super::Db;

/// The `process` a stand-in reports in `buildInfo`.
const STANDIN_PROCESS: &str = "nx_27017";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectIdFilter {
    /// `{field: id}`: MongoDB.
    Equality,
    /// `{field: {$in: [id]}}`: the stand-in (see the module's header).
    OneElementIn,
}

impl ObjectIdFilter {
    pub(super) fn for_process(process: Option<&str>) -> Self {
        if process == Some(STANDIN_PROCESS) {
            Self::OneElementIn
        } else {
            Self::Equality
        }
    }
}

impl Db {
    pub(super) fn object_id_is(&self, field: &str, id: ObjectId) -> Document {
        match self.object_id_filter {
            ObjectIdFilter::Equality => doc! { field: id },
            ObjectIdFilter::OneElementIn => doc! { field: { "$in": [id] } },
        }
    }

    pub fn object_id_filter(&self) -> ObjectIdFilter {
        self.object_id_filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_standin_gets_the_in_form() {
        assert_eq!(
            ObjectIdFilter::for_process(Some("nx_27017")),
            ObjectIdFilter::OneElementIn
        );
        for process in [Some("mongod"), None] {
            assert_eq!(
                ObjectIdFilter::for_process(process),
                ObjectIdFilter::Equality
            );
        }
    }
}
