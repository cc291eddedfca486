//! Connections per client address, so that one host cannot take every slot.
//!
//! Without it, one machine opening `--max-connections` connections (they
//! cost it nothing: a user can register as many names as it likes) locks
//! every other customer and agent out with `server_busy`. With it, such a
//! host gets `server_busy` itself once it holds its share, and everyone
//! else still gets in.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// The client a limit per address counts: an IPv4 address, or an IPv6 /64
/// network. One host is usually handed a whole /64, and could otherwise use
/// a fresh address for every connection. An IPv4 address carried in IPv6
/// (`::ffff:a.b.c.d`) counts as itself.
pub fn client(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// How many connections each address holds now (only addresses holding one).
type Held = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The connections each address holds now.
#[derive(Debug, Clone)]
pub struct AddressSlots {
    /// Most connections one address may hold; 0: no limit.
    max: usize,
    held: Held,
}

/// One connection's place in its address's count, given back on drop.
#[derive(Debug)]
pub struct AddressSlot {
    /// `None` when addresses are not limited: nothing is counted.
    counted: Option<(IpAddr, Held)>,
}

impl AddressSlots {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            held: Arc::default(),
        }
    }

    /// A place for one more connection from `address`, unless it holds its
    /// share already.
    pub fn try_take(&self, address: IpAddr) -> Option<AddressSlot> {
        if self.max == 0 {
            return Some(AddressSlot { counted: None });
        }
        let address = client(address);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(address).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counted: Some((address, Arc::clone(&self.held))),
        })
    }

    /// How many addresses hold a connection (for tests).
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some((address, held)) = self.counted.take() else {
            return;
        };
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Forgotten, so the map holds only the addresses connected.
                held.remove(&address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn each_address_holds_at_most_its_share() {
        let slots = AddressSlots::new(2);
        let first = slots.try_take(A).expect("room");
        let _second = slots.try_take(A).expect("room");
        assert!(slots.try_take(A).is_none(), "A holds its share");
        let _other = slots.try_take(B).expect("another address is not held back");
        drop(first);
        assert!(slots.try_take(A).is_some(), "room again once one closed");
    }

    #[test]
    fn an_address_with_nothing_open_is_forgotten() {
        let slots = AddressSlots::new(3);
        let taken: Vec<_> = (0..3).map(|_| slots.try_take(A).expect("room")).collect();
        assert_eq!(slots.addresses(), 1);
        drop(taken);
        assert_eq!(slots.addresses(), 0);
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64_network() {
        let slots = AddressSlots::new(1);
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("an address");
        let same_host: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("an address");
        let next_network: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        let _taken = slots.try_take(one).expect("room");
        assert!(slots.try_take(same_host).is_none(), "the same /64");
        assert!(slots.try_take(next_network).is_some(), "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("an address");
        assert_eq!(client(mapped), A);
    }

    #[test]
    fn zero_means_no_limit() {
        let slots = AddressSlots::new(0);
        let taken: Vec<_> = (0..10_000).map(|_| slots.try_take(A)).collect();
        assert!(taken.iter().all(Option::is_some));
        assert_eq!(slots.addresses(), 0, "nothing counted");
    }
}
