//! LoRA: the layer (below the model, in `layers::Linear`) and the adapter
//! (attach, save, load, merge over a whole model, above it).
pub mod adapter;
pub mod layer;

pub use adapter::*;
pub use layer::{Lora, LoraConfig, TARGETS};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lora_specs() {
        let c = LoraConfig::parse("r=8,alpha=16,dropout=0.1,targets=q,v").unwrap();
        assert_eq!((c.r, c.alpha, c.dropout), (8, 16.0, 0.1));
        assert_eq!(c.targets, vec!["q_proj", "v_proj"]);
        assert_eq!(c.scale(), 2.0);
        let c = LoraConfig::parse("targets=down,gate,r=4").unwrap();
        assert_eq!(c.targets, vec!["gate_proj", "down_proj"]);
        assert_eq!(c.r, 4);
        assert_eq!(LoraConfig::parse("").unwrap(), LoraConfig::default());
        assert!(LoraConfig::parse("r=0").unwrap_err().to_string().contains("at least 1"));
        assert!(LoraConfig::parse("targets=qkv").unwrap_err().to_string().contains("unknown target `qkv`"));
        assert!(LoraConfig::parse("rank16").unwrap_err().to_string().contains("not key=value"));
        assert!(LoraConfig::parse("beta=1").unwrap_err().to_string().contains("unknown option `beta`"));
    }

    #[test]
    fn regex_names_only_decoder_projections() {
        let re = regex::Regex::new(&LoraConfig::parse("targets=q,up").unwrap().target_regex()).unwrap();
        assert!(re.is_match("model.language_model.layers.3.self_attn.q_proj"));
        assert!(re.is_match("model.layers.3.mlp.up_proj"));
        assert!(!re.is_match("model.visual.blocks.0.mlp.up_proj"));
        assert!(!re.is_match("model.language_model.layers.3.self_attn.k_proj"));
    }

    #[test]
    fn peft_names_round_trip() {
        let c = "model.layers.2.mlp.down_proj.lora_B.weight";
        assert_eq!(peft_name(c), "base_model.model.model.language_model.layers.2.mlp.down_proj.lora_B.weight");
        assert_eq!(from_peft_name(&peft_name(c)), c);
        assert_eq!(from_peft_name("base_model.model.model.layers.2.mlp.down_proj.lora_B.weight"), c);
    }
}
