//! A client for BIRD's control socket (`/var/run/calico/bird.ctl` in calico-node), speaking the numeric reply
//! protocol that calicoctl and birdc use. Replies are returned raw; `crate::observe` parses them.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BirdSockError {
    #[error("cannot connect to BIRD at {path}: {source}")]
    Connect { path: String, source: std::io::Error },
    #[error("BIRD socket I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("BIRD closed the connection")]
    Closed,
}

pub struct BirdSock {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// A reply line ends the reply when its code is followed by a space and is a completion (0xxx) or an
/// error (8xxx, 9xxx).
fn is_final(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b' ' && matches!(b[0], b'0' | b'8' | b'9')
}

impl BirdSock {
    pub fn connect(path: &Path) -> Result<BirdSock, BirdSockError> {
        let s = UnixStream::connect(path)
            .map_err(|source| BirdSockError::Connect { path: path.display().to_string(), source })?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let writer = s.try_clone()?;
        let mut b = BirdSock { reader: BufReader::new(s), writer };
        b.read_reply()?; // 0001 hello
        Ok(b)
    }

    fn read_reply(&mut self) -> Result<String, BirdSockError> {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(BirdSockError::Closed);
            }
            out.push_str(&line);
            if is_final(line.trim_end_matches('\n')) {
                return Ok(out);
            }
        }
    }

    /// Send one command (e.g. `show protocols`) and return the raw reply.
    pub fn command(&mut self, cmd: &str) -> Result<String, BirdSockError> {
        self.writer.write_all(cmd.as_bytes())?;
        self.writer.write_all(b"\n")?;
        self.read_reply()
    }
}

/// One-shot command.
pub fn query(path: &Path, cmd: &str) -> Result<String, BirdSockError> {
    BirdSock::connect(path)?.command(cmd)
}

#[cfg(test)]
mod tests {
    use super::is_final;

    #[test]
    fn reply_framing() {
        assert!(is_final("0000 "));
        assert!(is_final("0003 Reconfigured"));
        assert!(is_final("8002 /etc/bird.cfg:3:1 Remote AS number must be set"));
        assert!(!is_final("0002-Reading configuration from /x"));
        assert!(!is_final("1002-Mesh_10_0_0_2 BGP master up 12:00:00 Established"));
        assert!(!is_final(" continuation"));
        assert!(!is_final("2002-name proto table state since info"));
    }
}
