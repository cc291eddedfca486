//! What every session shares: storage, fan-out, limits and rules.

use std::sync::Arc;

use crate::config::Config;
use crate::priority::PriorityRules;
use crate::router::Router;
use crate::store::Store;

pub struct Services {
    pub store: Store,
    pub router: Router,
    pub config: Config,
    pub rules: PriorityRules,
}

pub type SharedServices = Arc<Services>;
