"""A MiniLM sequence classifier that pools the way all-MiniLM-L6-v2 was trained.

transformers' BertForSequenceClassification classifies the [CLS] vector through
BERT's pooler; all-MiniLM-L6-v2 was trained with *mean* pooling, so its [CLS]
vector carries little meaning. On our intent data the stock head reached 0.90
test accuracy after 8 epochs, this one 0.96-0.98 after 3 (docs/classifier.md).
It is a regular `PreTrainedModel`: `from_pretrained`, `save_pretrained`, PEFT's
SEQ_CLS wrapper, `merge_and_unload` all work on it unchanged.

Imported lazily (it imports torch and transformers at module level).
"""

from __future__ import annotations

import os

os.environ.setdefault("USE_TF", "0")

import torch  # noqa: E402
from transformers.modeling_outputs import SequenceClassifierOutput  # noqa: E402
from transformers.models.bert.modeling_bert import BertModel, BertPreTrainedModel  # noqa: E402

# Logits are a scaled cosine between the unit-length sentence vector and each
# class weight: a bounded scale keeps early steps stable yet lets training converge fast.
LOGIT_SCALE = 20.0


class MiniLMClassifier(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = torch.nn.Dropout(config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=hidden.dtype)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        logits = self.classifier(self.dropout(pooled)) * LOGIT_SCALE
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
