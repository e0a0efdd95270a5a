//! Host-side precomputation for one parameter set: moduli and NTT tables for every prime.
//! Built once and shared (`&Context` is all any operation needs; it is `Send + Sync`).

use crate::arith::Modulus;
use crate::error::Error;
use crate::ntt::NttTableOwned;
use crate::params::Params;
use alloc::vec::Vec;

#[derive(Debug)]
pub struct Context {
    params: Params,
    q_moduli: Vec<Modulus>,
    p_moduli: Vec<Modulus>,
    q_tables: Vec<NttTableOwned>,
    p_tables: Vec<NttTableOwned>,
}

impl Context {
    pub fn new(params: Params) -> Result<Self, Error> {
        let n = params.n();
        let table = |q: &u64| NttTableOwned::new(*q, n).map_err(Error::from);
        let modulus = |q: &u64| Modulus::new(*q).ok_or(Error::Params(crate::params::ParamsError::NotNttFriendly { modulus: *q }));
        Ok(Self {
            q_moduli: params.q().iter().map(modulus).collect::<Result<_, _>>()?,
            p_moduli: params.p().iter().map(modulus).collect::<Result<_, _>>()?,
            q_tables: params.q().iter().map(table).collect::<Result<_, _>>()?,
            p_tables: params.p().iter().map(table).collect::<Result<_, _>>()?,
            params,
        })
    }
    pub fn params(&self) -> &Params {
        &self.params
    }
    pub fn n(&self) -> usize {
        self.params.n()
    }
    pub fn q_moduli(&self) -> &[Modulus] {
        &self.q_moduli
    }
    pub fn p_moduli(&self) -> &[Modulus] {
        &self.p_moduli
    }
    pub fn q_tables(&self) -> &[NttTableOwned] {
        &self.q_tables
    }
    pub fn p_tables(&self) -> &[NttTableOwned] {
        &self.p_tables
    }
}
