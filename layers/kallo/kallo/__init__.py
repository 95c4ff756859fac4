"""The Kallo platform's shared package, deployed as a Lambda layer and imported by every function."""
