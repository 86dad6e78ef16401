use anyhow::{Result, bail};

use crate::args::{Global, UnlockArgs};
use crate::output::Out;

pub fn run(_g: &Global, _out: &Out, _a: &UnlockArgs) -> Result<i32> {
    bail!("unlock is being built")
}
