"""NLI study: LoRA vs full vs partial fine-tuning of Hugging Face encoders on MNLI/SNLI."""
