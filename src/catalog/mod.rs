//! The catalog: agents and model listings, subscriptions, trailing returns.

pub mod evaluation;
pub mod listing;
pub mod returns;
pub mod subscriptions;

pub use listing::{Agent, Catalog, CatalogModel, Entry, Listing, ModelListing};
pub use subscriptions::{ItemKind, SubscriptionLimits, SubscriptionStore, Subscriptions};
