//! `--server a:7878,b:7878,c:7878`: the addresses of one help desk's nodes,
//! as every client takes them (the terminal client cycles through them
//! when a node is lost; the load generator spreads its connections over
//! them). A rule the clients share, with no I/O: names are not resolved
//! here, only their shape is checked, so that a typo is reported at start
//! with the entry that is wrong instead of as a failed connection later.

use thiserror::Error;

/// Why a `--server` list cannot be used; each says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServerListError {
    #[error(
        "no server address given: give host:port, or several separated by commas \
         (a:7878,b:7878)"
    )]
    Empty,
    #[error(
        "entry {position} of {list:?} is empty: give host:port addresses separated by \
         single commas (a:7878,b:7878)"
    )]
    EmptyEntry { position: usize, list: String },
    #[error("{entry:?} is not host:port (e.g. 127.0.0.1:7878 or [::1]:7878): {reason}")]
    BadAddress { entry: String, reason: &'static str },
    #[error("{entry:?} is listed twice: list each node once")]
    Duplicate { entry: String },
}

/// The addresses in `list`, in order, each `host:port` with spaces around
/// it trimmed: at least one, none empty, none twice. `host` is a name, an
/// IPv4 address or an IPv6 address in brackets; `port` is 1 to 65535.
pub fn parse_server_list(list: &str) -> Result<Vec<String>, ServerListError> {
    if list.trim().is_empty() {
        return Err(ServerListError::Empty);
    }
    let mut addresses: Vec<String> = Vec::new();
    for (index, entry) in list.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(ServerListError::EmptyEntry {
                position: index + 1,
                list: list.to_owned(),
            });
        }
        check_address(entry).map_err(|reason| ServerListError::BadAddress {
            entry: entry.to_owned(),
            reason,
        })?;
        if addresses
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(entry))
        {
            return Err(ServerListError::Duplicate {
                entry: entry.to_owned(),
            });
        }
        addresses.push(entry.to_owned());
    }
    Ok(addresses)
}

/// Whether `entry` has the shape `host:port`; if not, what is wrong.
fn check_address(entry: &str) -> Result<(), &'static str> {
    let Some((host, port)) = entry.rsplit_once(':') else {
        return Err("the port is missing");
    };
    match port.parse::<u16>() {
        Ok(0) => return Err("the port must be 1 to 65535"),
        Ok(_) => {}
        Err(_) if port.is_empty() => return Err("the port is missing"),
        Err(_) => return Err("the port must be a number from 1 to 65535"),
    }
    if let Some(inner) = host.strip_prefix('[') {
        let Some(ip) = inner.strip_suffix(']') else {
            return Err("an IPv6 address needs its closing bracket");
        };
        return ip
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| "the part in brackets is not an IPv6 address");
    }
    if host.is_empty() {
        return Err("the host is missing");
    }
    if host.contains(':') {
        return Err("write an IPv6 address in brackets, as in [::1]:7878");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !host.chars().all(allowed) {
        return Err("a host name holds only letters, digits, '.', '-' and '_'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_or_several_in_order() {
        assert_eq!(
            parse_server_list("127.0.0.1:7878"),
            Ok(vec!["127.0.0.1:7878".to_owned()])
        );
        assert_eq!(
            parse_server_list("a:7878, b.example.org:7879 ,[::1]:7880"),
            Ok(vec![
                "a:7878".to_owned(),
                "b.example.org:7879".to_owned(),
                "[::1]:7880".to_owned()
            ])
        );
    }

    #[test]
    fn empty_lists_and_entries_say_where() {
        assert_eq!(parse_server_list(" "), Err(ServerListError::Empty));
        let error = parse_server_list("a:1,,b:2").expect_err("an empty entry");
        assert_eq!(
            error.to_string(),
            "entry 2 of \"a:1,,b:2\" is empty: give host:port addresses separated by single \
             commas (a:7878,b:7878)"
        );
        assert!(matches!(
            parse_server_list("a:1,"),
            Err(ServerListError::EmptyEntry { position: 2, .. })
        ));
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let reason = |entry: &str| match parse_server_list(entry) {
            Err(ServerListError::BadAddress { reason, .. }) => reason,
            other => panic!("{entry}: {other:?}"),
        };
        assert_eq!(reason("a"), "the port is missing");
        assert_eq!(reason("a:"), "the port is missing");
        assert_eq!(reason("a:0"), "the port must be 1 to 65535");
        assert_eq!(
            reason("a:70000"),
            "the port must be a number from 1 to 65535"
        );
        assert_eq!(reason(":7878"), "the host is missing");
        assert_eq!(
            reason("::1:7878"),
            "write an IPv6 address in brackets, as in [::1]:7878"
        );
        assert_eq!(
            reason("[::1:7878"),
            "an IPv6 address needs its closing bracket"
        );
        assert_eq!(
            reason("[nope]:7878"),
            "the part in brackets is not an IPv6 address"
        );
        assert_eq!(
            reason("a b:7878"),
            "a host name holds only letters, digits, '.', '-' and '_'"
        );
        assert_eq!(
            parse_server_list("x:1,y:2:3").expect_err("bad").to_string(),
            "\"y:2:3\" is not host:port (e.g. 127.0.0.1:7878 or [::1]:7878): write an IPv6 \
             address in brackets, as in [::1]:7878"
        );
    }

    #[test]
    fn a_node_listed_twice_is_refused() {
        assert_eq!(
            parse_server_list("a:1,b:2,A:1"),
            Err(ServerListError::Duplicate {
                entry: "A:1".to_owned()
            })
        );
    }
}
