//! The model: an MLP over one flat parameter buffer, its passes and its weights files.

mod backprop;
pub mod matmul;
mod mlp;
mod prepack;
mod settings;
pub mod weights;

pub use backprop::{DropoutKey, Mode, Workspace};
pub use mlp::{Activation, LayerLayout, Mlp};
pub use prepack::{PackedWeights, WeightWriter};
pub use settings::{ModelFlags, ModelSettings};
