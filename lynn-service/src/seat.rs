//! [`SharedAdmission`]: one [`Admission`] shared by a server's tasks or threads, handing out
//! [`Seat`]s that give their permit back when dropped, on every exit path.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use lynn_proto::Instant;
use lynn_proto::admission::{Admission, AdmissionConfig, AdmissionConfigError, Permit, Rejection};

/// An [`Admission`] behind a mutex, locked once per accept and once per close (never per
/// message).
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use lynn_proto::Instant;
/// use lynn_service::SharedAdmission;
/// use lynn_proto::admission::AdmissionConfig;
///
/// let config = AdmissionConfig { max_per_ip: 1, ..Default::default() };
/// let admission = SharedAdmission::new(config).unwrap();
/// let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let seat = admission.try_admit(ip, Instant::now()).unwrap();
/// assert!(admission.try_admit(ip, Instant::now()).is_err());
/// drop(seat); // the connection ended, however it ended
/// assert_eq!(admission.open(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct SharedAdmission(Arc<Mutex<Admission>>);

impl SharedAdmission {
    /// Validates `config` and wraps a new [`Admission`].
    pub fn new(config: AdmissionConfig) -> Result<Self, AdmissionConfigError> {
        Ok(SharedAdmission(Arc::new(Mutex::new(Admission::new(
            config,
        )?))))
    }

    /// Admits a connection from `ip`, or says which limit refused it.
    pub fn try_admit(&self, ip: IpAddr, now: Instant) -> Result<Seat, Rejection> {
        let permit = lock(&self.0).try_admit(ip, now)?;
        Ok(Seat {
            permit: Some(permit),
            admission: Arc::clone(&self.0),
        })
    }

    /// Connections admitted and not yet released.
    pub fn open(&self) -> usize {
        lock(&self.0).open()
    }

    /// Runs `f` with the admission locked (for stats and the like).
    pub fn with<R>(&self, f: impl FnOnce(&Admission) -> R) -> R {
        f(&lock(&self.0))
    }
}

/// A connection's admitted place. Dropping it releases the permit exactly once.
#[derive(Debug)]
#[must_use = "dropping a Seat releases the connection's place at once"]
pub struct Seat {
    permit: Option<Permit>,
    admission: Arc<Mutex<Admission>>,
}

impl Seat {
    /// The address the connection was admitted for.
    pub fn ip(&self) -> Option<IpAddr> {
        self.permit.as_ref().map(Permit::ip)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            lock(&self.admission).release(permit);
        }
    }
}

/// Admission's state stays consistent across a panic in a caller (every method completes
/// its update before returning), so a poisoned lock is safe to keep using.
fn lock(m: &Mutex<Admission>) -> MutexGuard<'_, Admission> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
