import os

# This machine's Node.js (which jsii runs the CDK on) is past its end of life; the
# synthesis is unaffected, so its banner is silenced.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
