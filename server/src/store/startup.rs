//! Before the writer starts: the conversations of agents removed while no
//! server ran are let go, by the same rule the credential poll applies
//! later ([`rules::release_removed_agents`]). Nobody is connected yet, so
//! there is no one to tell; the releases are still counted, so positions
//! (`Seq`) keep rising.

use switchboard_protocol::Name;

use super::backend::{Backend, Transaction};
use super::rules;

/// [`rules::release_removed_agents`] in `tx`.
fn released_in<T: Transaction>(tx: &T) -> Result<Vec<(Name, Name)>, T::Error> {
    let mut tables = tx.tables()?;
    Ok(rules::release_removed_agents(&mut tables)?)
}

/// Lets go of the conversations of agents removed while no server ran,
/// before the writer starts. Nobody is connected yet, so there is no one to
/// tell.
pub(super) fn release_removed_agents<B: Backend>(backend: &mut B) -> Result<(), B::Error> {
    let tx = backend.begin()?;
    let released = released_in(&tx)?;
    if !released.is_empty() {
        tx.add_releases(released.len() as u64)?;
    }
    tx.commit()?;
    if !released.is_empty() {
        tracing::info!(
            conversations = released.len(),
            "released the conversations of agents removed while the server was down"
        );
    }
    Ok(())
}
