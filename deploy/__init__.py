"""AWS deployment as code (CDK, Python): `cdk synth -c env=dev` from this directory."""
