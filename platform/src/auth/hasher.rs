//! The password hasher: argon2id on a few dedicated threads (no more than the cores), each
//! with its own argon2 memory made once and reused. Argon2 needs 19 MiB per hash; made
//! afresh on the runtime's blocking threads (up to hundreds of them), each thread's
//! allocator arena kept that memory for good, so a burst of sign-ins could take gigabytes.
//! Here the memory is the threads' blocks and nothing else: it never grows with the load,
//! and callers beyond the threads wait their turn (a semaphore), not a thread each.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Semaphore, oneshot};

/// OWASP's first recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// The memory one hash needs (made once per thread).
pub fn memory() -> Vec<Block> {
    vec![Block::default(); params().block_count()]
}

enum Job {
    Hash(SecretString, oneshot::Sender<anyhow::Result<String>>),
    Verify(SecretString, String, oneshot::Sender<bool>),
}

pub struct Hasher {
    jobs: Mutex<mpsc::Sender<Job>>,
    turns: Semaphore,
}

impl Hasher {
    /// `threads` dedicated threads (at least one).
    pub fn start(threads: usize) -> anyhow::Result<Arc<Hasher>> {
        let threads = threads.max(1);
        let (send, receive) = mpsc::channel::<Job>();
        let receive = Arc::new(Mutex::new(receive));
        for i in 0..threads {
            let receive = Arc::clone(&receive);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&receive))?;
        }
        Ok(Arc::new(Hasher {
            jobs: Mutex::new(send),
            turns: Semaphore::new(threads),
        }))
    }

    /// As many as the machine has cores.
    pub fn threads_for_this_machine() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _turn = self.turns.acquire().await?;
        let (done, answer) = oneshot::channel();
        self.submit(Job::Hash(password, done))?;
        answer.await?
    }

    pub async fn verify(&self, password: SecretString, hash: String) -> anyhow::Result<bool> {
        let _turn = self.turns.acquire().await?;
        let (done, answer) = oneshot::channel();
        self.submit(Job::Verify(password, hash, done))?;
        Ok(answer.await?)
    }

    fn submit(&self, job: Job) -> anyhow::Result<()> {
        self.jobs
            .lock()
            .map_err(|_| anyhow::anyhow!("the password hasher is poisoned"))?
            .send(job)
            .map_err(|_| anyhow::anyhow!("the password hasher stopped"))
    }
}

fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory = memory();
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Err(_) => return,
            Ok(Job::Hash(password, done)) => {
                let _ = done.send(hash(&mut memory, password.expose_secret().as_bytes()));
            }
            Ok(Job::Verify(password, phc, done)) => {
                let _ = done.send(verify(
                    &mut memory,
                    password.expose_secret().as_bytes(),
                    &phc,
                ));
            }
        }
    }
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`), as `PasswordHasher` makes it.
pub fn hash(memory: &mut [Block], password: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?;
    let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(length, |out| {
        argon
            .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Password)
    })
    .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (any argon2 parameters it names).
pub fn verify(memory: &mut [Block], password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    // A hash made with more memory than ours (older settings) gets its own, once.
    let mut larger;
    let blocks: &mut [Block] = if params.block_count() > memory.len() {
        larger = vec![Block::default(); params.block_count()];
        &mut larger
    } else {
        memory
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    argon
        .hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
        .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}
