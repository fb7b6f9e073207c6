import sys

from keras_simmim.cli import main

sys.exit(main())
