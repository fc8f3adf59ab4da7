//! Who holds a lane's lease: a relay process, named by its host, process id, the process's start
//! time and a random part, and whether such a holder is gone. Two relays share an embedded store
//! only on one machine (during an in-place restart), so there a lease whose holder's process has
//! ended is taken at once instead of after its expiry: a relay restarted after a crash delivers
//! right away.

/// This relay's name in the store's `lanes` table: `host/pid/start/random`. A restarted relay
/// (or a second one in the same process, as tests run) is a new holder.
pub fn this_relay() -> String {
    let start = start_time(std::process::id()).unwrap_or_default();
    format!("{}/{}/{start}/{:08x}", host(), std::process::id(), fastrand::u32(..))
}

/// Whether `owner` (a name made by [`this_relay`]) is a relay process on this host that has
/// ended: no process has its id, or the one that has it started at another time (the id was
/// reused, as every container's first process is 1). A holder on another host, or of a shape
/// this release did not make, is never judged gone: its lease expires by itself.
pub fn gone(owner: &str) -> bool {
    let mut parts = owner.split('/');
    let (Some(host_name), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if host_name != host() || parts.next().is_none() {
        return false;
    }
    match start_time(pid) {
        None => true,
        Some(now) => now != start,
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().replace('/', "-"))
        .unwrap_or_else(|| "relay".into())
}

/// A process's start time (clock ticks after boot, field 22 of `/proc/PID/stat`), `None` when
/// there is no such process (or no `/proc`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_living_relay_is_not_gone_and_an_ended_one_is() {
        let me = this_relay();
        assert!(!gone(&me), "this process is alive: {me}");
        assert_ne!(me, this_relay(), "a second relay in one process is another holder");

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        let ended = format!("{}/{pid}/{}/0", host(), start.unwrap_or(1));
        assert!(gone(&ended), "its process ended: {ended}");

        let own_pid_other_start = format!("{}/{}/1/0", host(), std::process::id());
        assert!(gone(&own_pid_other_start), "a reused process id (a container's pid 1 after a restart)");
    }

    #[test]
    fn a_holder_that_cannot_be_checked_is_never_gone() {
        assert!(!gone("another-host/4000000/1/0"), "another host");
        assert!(!gone("relay-1"), "a name of another shape");
        assert!(!gone(&format!("{}/4000000/0", host())), "the shape before the start time was named");
    }
}
