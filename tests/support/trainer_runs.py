"""Tiny end-to-end fine-tuning runs through plain ``Trainer`` on CPU: classification, LoRA on a layer subset, every
PEFT method, architectures the closed form does not cover (measured on meta), a vision-language model and an
encoder-decoder model. Each is a factory ``(output dir, callback) -> trainer`` for ``tests.support.trl_runs.run``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.tiny_models import build, from_config
from tests.support.trl_runs import VOCAB, tiny_config, train_args


class ClassificationData:
    """Map-style rows of token ids with a class label."""

    def __init__(self, rows: int, *, seq: int = 32, labels: int = 3, seed: int = 0) -> None:
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(4, VOCAB, (rows, seq), generator=gen)
        self.labels = torch.randint(0, labels, (rows,), generator=gen)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "attention_mask": self.ids[i].new_ones(self.ids[i].shape),
                "labels": self.labels[i]}  # fmt: skip


def sequence_classification(*, labels: int = 3) -> Callable[..., Any]:
    def make(out: Path, callback: Any) -> Any:
        import torch
        from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

        torch.manual_seed(0)
        config = tiny_config()
        config.num_labels = labels
        config.pad_token_id = 0
        model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
        return Trainer(model=model, args=train_args(TrainingArguments, out), train_dataset=ClassificationData(16),
                       callbacks=[callback])  # fmt: skip

    return make


def causal_lm(model_factory: Callable[[], Any], *, seq: int = 32) -> Callable[..., Any]:
    """Plain ``Trainer`` on random token rows for any causal LM ``model_factory`` builds."""

    def make(out: Path, callback: Any) -> Any:
        from transformers import Trainer, TrainingArguments

        from tests.support.tiny_models import TokenDataset

        model = model_factory()
        data = TokenDataset(16, seq=seq, pad_every=3)
        data.ids = data.ids % model.config.vocab_size
        return Trainer(model=model, args=train_args(TrainingArguments, out), train_dataset=data, callbacks=[callback])

    return make


def lora_subset() -> Any:
    """LoRA on layers 1 and 3 of 4 (``layers_to_transform``), rank 8 on q/v and rank 4 on o (``rank_pattern``)."""
    from peft import LoraConfig, get_peft_model

    model = build(tiny_config(layers=4))
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"], layers_to_transform=[1, 3],
                        rank_pattern={"o_proj": 4})  # fmt: skip
    return get_peft_model(model, config)


def mla_model() -> Any:
    """A DeepSeek-V2-Lite-shaped model, all layers dense: multi-head latent attention (outside formula arch-v1)."""
    import torch
    from transformers import AutoModelForCausalLM, DeepseekV2Config

    torch.manual_seed(0)
    config = DeepseekV2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=16,
                              q_lora_rank=None, qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16,
                              first_k_dense_replace=2, n_routed_experts=4, num_experts_per_tok=2,
                              max_position_embeddings=512, tie_word_embeddings=False)  # fmt: skip
    return AutoModelForCausalLM.from_config(config, attn_implementation="eager")


def deepseek_v3_model() -> Any:
    """A DeepSeek-V3-shaped model: multi-head latent attention and routed + shared experts (eager experts)."""
    import torch
    from transformers import AutoModelForCausalLM, DeepseekV3Config

    torch.manual_seed(0)
    config = DeepseekV3Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4,
                              num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1, kv_lora_rank=16,
                              q_lora_rank=32, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=16, n_group=1,
                              topk_group=1, max_position_embeddings=512)  # fmt: skip
    return from_config(AutoModelForCausalLM, config, attn_implementation="eager", experts_implementation="eager")


# ---- every PEFT method ----------------------------------------------------------------------------------------
def peft_model(method: str, *, attention: str = "eager") -> Callable[[], Any]:
    """A tiny causal LM wrapped by PEFT ``method``: prompt_tuning, prefix_tuning, p_tuning, ia3, dora, rslora, or
    lora_modules_to_save (LoRA on q/v with the LM head trained as a full copy)."""

    def make() -> Any:
        import peft

        causal = peft.TaskType.CAUSAL_LM
        configs: dict[str, Callable[[], peft.PeftConfig]] = {
            "prompt_tuning": lambda: peft.PromptTuningConfig(task_type=causal, num_virtual_tokens=8),
            "prefix_tuning": lambda: peft.PrefixTuningConfig(task_type=causal, num_virtual_tokens=8),
            "p_tuning": lambda: peft.PromptEncoderConfig(task_type=causal, num_virtual_tokens=8,
                                                         encoder_hidden_size=32),
            "ia3": lambda: peft.IA3Config(task_type=causal),
            "dora": lambda: peft.LoraConfig(task_type=causal, r=4, use_dora=True, target_modules=["q_proj", "v_proj"]),
            "rslora": lambda: peft.LoraConfig(task_type=causal, r=4, use_rslora=True,
                                              target_modules=["q_proj", "v_proj"]),
            "lora_modules_to_save": lambda: peft.LoraConfig(task_type=causal, r=4, target_modules=["q_proj", "v_proj"],
                                                            modules_to_save=["lm_head"]),
        }  # fmt: skip
        return peft.get_peft_model(build(tiny_config(), attention=attention), configs[method]())

    return make


# ---- encoder-decoder ------------------------------------------------------------------------------------------
class Seq2SeqData:
    """Map-style rows: source ids of ``source`` tokens (some half padding), target labels of ``target`` tokens."""

    def __init__(self, rows: int, *, source: int = 40, target: int = 12, seed: int = 0) -> None:
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(4, VOCAB, (rows, source), generator=gen)
        self.mask = torch.ones_like(self.ids)
        self.mask[::3, source // 2 :] = 0
        self.labels = torch.randint(4, VOCAB, (rows, target), generator=gen)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}


def t5_model(attention: str = "eager") -> Any:
    """A tiny T5 (relative attention, gated-less ReLU feed-forward), random weights."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                      num_heads=4, pad_token_id=0)  # fmt: skip
    config.decoder_start_token_id = 0  # not a declared field of T5Config (a generation setting it keeps)
    return T5ForConditionalGeneration._from_config(config, attn_implementation=attention)


def bart_model(attention: str = "sdpa") -> Any:
    """A tiny BART (learned positions, biased projections), random weights, SDPA attention by default."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(0)
    config = BartConfig(vocab_size=VOCAB, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                        max_position_embeddings=128, pad_token_id=0, bos_token_id=2, eos_token_id=1,
                        decoder_start_token_id=2)  # fmt: skip
    return BartForConditionalGeneration._from_config(config, attn_implementation=attention)


def seq2seq(model_factory: Callable[[], Any], *, source: int = 40, target: int = 12) -> Callable[..., Any]:
    """``Seq2SeqTrainer`` on random source/target rows for an encoder-decoder ``model_factory`` builds."""

    def make(out: Path, callback: Any) -> Any:
        from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

        data = Seq2SeqData(16, source=source, target=target)
        return Seq2SeqTrainer(model=model_factory(), args=train_args(Seq2SeqTrainingArguments, out), train_dataset=data,
                              callbacks=[callback])  # fmt: skip

    return make


# ---- vision-language ------------------------------------------------------------------------------------------
IMAGE_TOKEN = VOCAB - 1


def llava_model(*, freeze_tower: bool = True, attention: str = "eager") -> Any:
    """A tiny LLaVA (CLIP tower of 32x32 images in 8x8 patches: 16 image tokens each, a two-layer projector), the
    tower frozen as LLaVA's recipe does, the projector and language model trained."""
    import torch
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                              image_size=32, patch_size=8)  # fmt: skip
    config = LlavaConfig(text_config=tiny_config(), vision_config=vision, image_token_index=IMAGE_TOKEN)
    model = LlavaForConditionalGeneration._from_config(config, attn_implementation=attention)
    for param in model.model.vision_tower.parameters():
        param.requires_grad_(not freeze_tower)
    return model


def qwen2_vl_model(*, attention: str = "eager") -> Any:
    """A tiny Qwen2-VL (a ViT over 4x4 patches, 2x2 merged into one language-model token), everything trained."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(0)
    text = {"vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}}  # fmt: skip
    vision = {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "patch_size": 4, "spatial_merge_size": 2,
              "temporal_patch_size": 2, "in_channels": 3, "mlp_ratio": 2}  # fmt: skip
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=IMAGE_TOKEN, video_token_id=VOCAB - 2,
                           vision_start_token_id=VOCAB - 3, vision_end_token_id=VOCAB - 4)  # fmt: skip
    return Qwen2VLForConditionalGeneration._from_config(config, attn_implementation=attention)


class ImageTextData:
    """Rows of text with one image each: its tokens in ``input_ids`` as the processor writes them, the pixels, and
    (Qwen2-VL) the image's patch grid, of ``sizes`` patches per side in turn (images of several sizes)."""

    def __init__(self, rows: int, *, kind: str, seq: int = 48, sizes: tuple[int, ...] = (8,), seed: int = 0) -> None:
        import torch

        self.kind, self.rows, self.seq, self.sizes = kind, rows, seq, sizes
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        gen = torch.Generator().manual_seed(i)
        if self.kind == "llava":
            image_tokens, pixels, extra = 16, torch.randn(3, 32, 32, generator=gen), {}
        else:
            side = self.sizes[i % len(self.sizes)]
            image_tokens = side * side // 4
            pixels = torch.randn(side * side, 3 * 2 * 4 * 4, generator=gen)
            extra = {"image_grid_thw": torch.tensor([1, side, side])}
        ids = torch.randint(4, VOCAB - 5, (self.seq,), generator=gen)
        ids[2 : 2 + image_tokens] = IMAGE_TOKEN
        row = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.masked_fill(ids == IMAGE_TOKEN,
               -100), "pixel_values": pixels, **extra}  # fmt: skip
        if self.kind != "llava":
            row["mm_token_type_ids"] = (ids == IMAGE_TOKEN).long()
        return row


def collate_images(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack text; LLaVA's images stack, Qwen2-VL's patches concatenate (with one grid row per image)."""
    import torch

    batch = {k: torch.stack([r[k] for r in rows]) for k in ("input_ids", "attention_mask", "labels")}
    if "image_grid_thw" in rows[0]:
        batch["pixel_values"] = torch.cat([r["pixel_values"] for r in rows])
        batch["image_grid_thw"] = torch.stack([r["image_grid_thw"] for r in rows])
        batch["mm_token_type_ids"] = torch.stack([r["mm_token_type_ids"] for r in rows])
    else:
        batch["pixel_values"] = torch.stack([r["pixel_values"] for r in rows])
    return batch


def vision_language(
    model_factory: Callable[[], Any], *, kind: str, sizes: tuple[int, ...] = (8,)
) -> Callable[..., Any]:
    """``Trainer`` on rows with one image each for a LLaVA- or Qwen2-VL-shaped ``model_factory``."""

    def make(out: Path, callback: Any) -> Any:
        from transformers import Trainer, TrainingArguments

        data = ImageTextData(16, kind=kind, sizes=sizes)
        args = train_args(TrainingArguments, out, remove_unused_columns=False)
        return Trainer(model=model_factory(), args=args, train_dataset=data, data_collator=collate_images,
                       callbacks=[callback])  # fmt: skip

    return make
